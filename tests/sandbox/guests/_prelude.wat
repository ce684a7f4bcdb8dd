;; Shared by the guest bodies in this folder (the loader wraps `(module prelude body)`).
;; Imports all five ABI functions; a bump allocator exported as cabi_realloc;
;; a 12-byte return area for handle at 1024 and one for imports at 1040.
(import "circuit:script/records@1.0.0" "query" (func $query (param i32 i32 i32 i32 i32)))
(import "circuit:script/records@1.0.0" "dml" (func $dml (param i32 i32 i32 i32 i32 i32)))
(import "circuit:script/http@1.0.0" "callout" (func $callout (param i32 i32 i32)))
(import "circuit:script/log@1.0.0" "write" (func $log (param i32 i32 i32)))
(import "circuit:script/limits@1.0.0" "usage" (func $usage (param i32)))
(memory (export "memory") 2)
(global $heap (mut i32) (i32.const 65536))

(func $realloc (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
  (local $ptr i32) (local $end i32) (local $have i32)
  (local.set $ptr
    (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
             (i32.sub (i32.const 0) (local.get $align))))
  (local.set $end (i32.add (local.get $ptr) (local.get $size)))
  (local.set $have (i32.mul (memory.size) (i32.const 65536)))
  (if (i32.gt_u (local.get $end) (local.get $have))
    (then
      (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16))
                                        (i32.const 1)))
                  (i32.const -1))
        (then unreachable))))
  (global.set $heap (local.get $end))
  (local.get $ptr))

(func (export "cabi_post_handle") (param i32))

;; Fill handle's return area: tag (0 ok, 1 err), payload pointer and length.
(func $result (param $tag i32) (param $ptr i32) (param $len i32) (result i32)
  (i32.store8 (i32.const 1024) (local.get $tag))
  (i32.store (i32.const 1028) (local.get $ptr))
  (i32.store (i32.const 1032) (local.get $len))
  (i32.const 1024))

;; ok(msgpack nil), the byte 0xc0 kept at 1020.
(data (i32.const 1020) "\c0")
(func $ok_nil (result i32) (call $result (i32.const 0) (i32.const 1020) (i32.const 1)))

;; Forward the import return area at 1040 as handle's result.
(func $forward (result i32)
  (call $result (i32.load8_u (i32.const 1040)) (i32.load (i32.const 1044)) (i32.load (i32.const 1048))))
