;; Returns limits.usage() as ok(bytes).
(func (export "handle") (param i32 i32) (result i32)
  (call $usage (i32.const 1040))
  (call $result (i32.const 0) (i32.load (i32.const 1040)) (i32.load (i32.const 1044))))
