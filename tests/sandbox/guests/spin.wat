;; An infinite loop in handle.
(func (export "handle") (param i32 i32) (result i32)
  (loop $forever (br $forever))
  (i32.const 0))
