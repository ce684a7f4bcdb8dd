;; A before trigger that sets Title on the first record: returns ok({"new": [{"Title": "Changed"}]}).
(data (i32.const 2048) "\81\a3new\91\81\a5Title\a7Changed")
(func (export "handle") (param i32 i32) (result i32)
  (call $result (i32.const 0) (i32.const 2048) (i32.const 21)))
