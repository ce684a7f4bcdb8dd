;; Writes 1 KiB log lines forever: log_bytes must stop it.
(func (export "handle") (param i32 i32) (result i32)
  (loop $forever
    (call $log (i32.const 1) (i32.const 4096) (i32.const 1024))
    (br $forever))
  (i32.const 0))
