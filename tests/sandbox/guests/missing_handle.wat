(module
  ;; Exports `wasi:http/incoming-handler@0.2.0#handle` but not `handle`: names match exactly.
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0))
  (func (export "wasi:http/incoming-handler@0.2.0#handle") (param i32 i32) (result i32) (i32.const 0))
  (func (export "cabi_post_handle") (param i32)))
