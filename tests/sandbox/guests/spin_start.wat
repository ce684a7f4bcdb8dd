;; An infinite loop in the start function: must be stopped before handle is ever reached.
(func $spin (loop $forever (br $forever)))
(start $spin)
(func (export "handle") (param i32 i32) (result i32) (call $ok_nil))
