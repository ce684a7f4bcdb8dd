(module
  ;; cabi_realloc always returns null: the host cannot even hand over the event.
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0))
  (func (export "handle") (param i32 i32) (result i32) (i32.const 1024))
  (func (export "cabi_post_handle") (param i32)))
