;; Runs `SELECT Id FROM Contact` N times, N being the event's first byte (a msgpack fixint).
(data (i32.const 2048) "SELECT Id FROM Contact")
(func (export "handle") (param $ptr i32) (param $len i32) (result i32)
  (local $n i32)
  (local.set $n (i32.load8_u (local.get $ptr)))
  (block $done
    (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (call $query (i32.const 2048) (i32.const 22) (i32.const 0) (i32.const 0) (i32.const 1040))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
  (call $ok_nil))
