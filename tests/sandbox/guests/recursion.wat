;; Unbounded recursion: must end as a stack-overflow trap, not a host crash.
(func $down (param $n i32) (result i32)
  (i32.add (call $down (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
(func (export "handle") (param i32 i32) (result i32)
  (drop (call $down (i32.const 0)))
  (call $ok_nil))
