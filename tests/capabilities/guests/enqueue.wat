(module
  ;; ABI 1.1.0: imports jobs.enqueue. Event bytes: [count u8][mode u8][circuit name...];
  ;; calls enqueue `count` times with the payload {"n": 1}, then returns ok nil or the last enqueue's
  ;; err (mode 0), err "rolled back" (mode 1), or traps (mode 2).
  (import "circuit:script/jobs@1.1.0" "enqueue" (func $enqueue (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (data (i32.const 1000) "\81\a1n\01")
  (data (i32.const 1008) "rolled back")
  (data (i32.const 1020) "\c0")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get 3)))
    (local.get $ptr))
  (func (export "cabi_post_handle") (param i32))
  (func (export "handle") (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $count i32)
    (local.set $count (i32.load8_u (local.get $ptr)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (call $enqueue (i32.add (local.get $ptr) (i32.const 2)) (i32.sub (local.get $len) (i32.const 2))
                       (i32.const 1000) (i32.const 4) (i32.const 1040))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (if (i32.eq (i32.load8_u (i32.add (local.get $ptr) (i32.const 1))) (i32.const 2)) (then unreachable))
    (if (i32.eq (i32.load8_u (i32.add (local.get $ptr) (i32.const 1))) (i32.const 1))
      (then
        (i32.store8 (i32.const 1024) (i32.const 1))
        (i32.store (i32.const 1028) (i32.const 1008))
        (i32.store (i32.const 1032) (i32.const 11))
        (return (i32.const 1024))))
    ;; the last enqueue's err as handle's result, or ok(nil)
    (if (i32.eq (i32.load8_u (i32.const 1040)) (i32.const 1)) (then (return (i32.const 1040))))
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 1020))
    (i32.store (i32.const 1032) (i32.const 1))
    (i32.const 1024)))
