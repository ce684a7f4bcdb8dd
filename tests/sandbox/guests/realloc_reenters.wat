(module
  ;; cabi_realloc calls back into the host: forbidden, it must trap.
  (import "circuit:script/log@1.0.0" "write" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (call $log (i32.const 1) (i32.const 0) (i32.const 4))
    (i32.const 65536))
  (func (export "handle") (param i32 i32) (result i32) (i32.const 1024))
  (func (export "cabi_post_handle") (param i32)))
