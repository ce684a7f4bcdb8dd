;; Has an _initialize export that must run once before handle: handle returns what it stored.
(global $ready (mut i32) (i32.const 0))
(data (i32.const 2048) "\c3")
(data (i32.const 2049) "\c2")
(func (export "_initialize") (global.set $ready (i32.const 1)))
(func (export "handle") (param i32 i32) (result i32)
  (if (result i32) (global.get $ready)
    (then (call $result (i32.const 0) (i32.const 2048) (i32.const 1)))
    (else (call $result (i32.const 0) (i32.const 2049) (i32.const 1)))))
