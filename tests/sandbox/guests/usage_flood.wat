;; Calls limits.usage forever: an unbounded host-call flood that only fuel or the deadline ends.
(func (export "handle") (param i32 i32) (result i32)
  (loop $forever
    (call $usage (i32.const 1040))
    (br $forever))
  (i32.const 0))
