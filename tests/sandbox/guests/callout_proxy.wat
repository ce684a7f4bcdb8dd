;; Sends the event bytes as an http.callout request and returns the import's result as its own.
(func (export "handle") (param $ptr i32) (param $len i32) (result i32)
  (call $callout (local.get $ptr) (local.get $len) (i32.const 1040))
  (call $forward))
