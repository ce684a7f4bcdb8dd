;; Inserts one Contact, then traps if the event's first byte is 0 or returns ok otherwise.
(data (i32.const 2048) "Contact")
(data (i32.const 2064) "\91\81\a8LastName\a7Trapped")
(func (export "handle") (param $ptr i32) (param $len i32) (result i32)
  (call $dml (i32.const 0) (i32.const 2048) (i32.const 7) (i32.const 2064) (i32.const 19) (i32.const 1040))
  (if (i32.eqz (i32.load8_u (local.get $ptr))) (then unreachable))
  (call $forward))
