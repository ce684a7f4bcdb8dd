;; Sends a 50,000-character SOQL text as often as the queries limit allows: the debug log used to
;; keep every copy (10 MB stored for 10 KB of log_bytes used).
(func (export "handle") (param i32 i32) (result i32)
  (memory.fill (i32.const 8192) (i32.const 65) (i32.const 50000))
  (loop $forever
    (call $query (i32.const 8192) (i32.const 50000) (i32.const 0) (i32.const 0) (i32.const 1040))
    (br $forever))
  (call $ok_nil))
