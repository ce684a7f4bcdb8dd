(module
  ;; Imports a function the ABI does not have, in an ABI interface.
  (import "circuit:script/records@1.0.0" "drop_all" (func (param i32)))
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0))
  (func (export "handle") (param i32 i32) (result i32) (i32.const 0))
  (func (export "cabi_post_handle") (param i32)))
