(module
  ;; The start function asks for limits.usage; writing the reply calls cabi_realloc, which calls
  ;; back into the host: forbidden during the start function too, it must trap.
  (import "circuit:script/log@1.0.0" "write" (func $log (param i32 i32 i32)))
  (import "circuit:script/limits@1.0.0" "usage" (func $usage (param i32)))
  (memory (export "memory") 2)
  (global $reentered (mut i32) (i32.const 0))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (call $log (i32.const 1) (i32.const 0) (i32.const 4))
    (global.set $reentered (i32.const 1))
    (i32.const 8192))
  (func $start (call $usage (i32.const 1040)))
  (start $start)
  (func (export "handle") (param i32 i32) (result i32) (i32.const 1024))
  (func (export "cabi_post_handle") (param i32)))
