(module
  ;; cabi_realloc works once (for the event), then returns a pointer past the end of memory,
  ;; so lowering the query's result into guest memory must fail cleanly.
  (import "circuit:script/records@1.0.0" "query" (func $query (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 2048) "SELECT Id FROM Contact")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (result i32) (i32.eq (global.get $calls) (i32.const 1))
      (then (i32.const 65536))
      (else (i32.const 0xFFFFFFF0))))
  (func (export "handle") (param i32 i32) (result i32)
    (call $query (i32.const 2048) (i32.const 22) (i32.const 0) (i32.const 0) (i32.const 1040))
    (i32.const 1024))
  (func (export "cabi_post_handle") (param i32)))
