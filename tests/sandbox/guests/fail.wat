;; Returns err("bad lead") -- a guest-reported failure, not a trap.
(data (i32.const 2048) "bad lead")
(func (export "handle") (param i32 i32) (result i32)
  (call $result (i32.const 1) (i32.const 2048) (i32.const 8)))
