(module
  ;; A second, unexported memory of 3 MiB that grows past the cap: the store's limit is per memory,
  ;; so two memories would get twice the cap. A circuit gets one.
  (memory (export "memory") 1)
  (memory $hidden 48)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 4096))
  (func (export "handle") (param i32 i32) (result i32)
    (drop (memory.grow $hidden (i32.const 16)))
    (i32.const 1024))
  (func (export "cabi_post_handle") (param i32)))
