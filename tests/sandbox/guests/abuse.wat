;; One ABI abuse per case; the case number is the event's first byte (a msgpack fixint).
;; Every case must end the execution as a trap (or limit), never crash or hang the host.
(data (i32.const 2048) "SELECT Id FROM Contact")
(data (i32.const 2080) "Contact")
(data (i32.const 2096) "\91\81\a8LastName\a1X")
(data (i32.const 2128) "\ff\fe bad utf-8")
(data (i32.const 2144) "\c1")
(data (i32.const 2148) "\92\01")
(data (i32.const 2152) "\a5ab")
(func (export "handle") (param $ptr i32) (param $len i32) (result i32)
  (block $c21 (block $c20 (block $c19 (block $c18 (block $c17 (block $c16 (block $c15 (block $c14
  (block $c13 (block $c12 (block $c11 (block $c10 (block $c9 (block $c8 (block $c7 (block $c6
  (block $c5 (block $c4 (block $c3 (block $c2 (block $c1 (block $c0
    (br_table $c0 $c1 $c2 $c3 $c4 $c5 $c6 $c7 $c8 $c9 $c10 $c11 $c12 $c13 $c14 $c15 $c16 $c17 $c18 $c19
              $c20 $c21 (i32.load8_u (local.get $ptr))))
    ;; 0: query, soql pointer near the top of the address space (arrives in Python as a negative int)
    (call $query (i32.const 0xFFFFFF00) (i32.const 0x200) (i32.const 0) (i32.const 0) (i32.const 1040))
    (return (call $ok_nil)))
    ;; 1: query, binds length far past the end of memory
    (call $query (i32.const 2048) (i32.const 22) (i32.const 0) (i32.const 0x7FFFFFFF) (i32.const 1040))
    (return (call $ok_nil)))
    ;; 2: query, return area out of bounds
    (call $query (i32.const 2048) (i32.const 22) (i32.const 0) (i32.const 0) (i32.const 0xFFFFFFFC))
    (return (call $ok_nil)))
    ;; 3: query, misaligned return area
    (call $query (i32.const 2048) (i32.const 22) (i32.const 0) (i32.const 0) (i32.const 1041))
    (return (call $ok_nil)))
    ;; 4: dml with op 7, not a dml-op
    (call $dml (i32.const 7) (i32.const 2080) (i32.const 7) (i32.const 2096) (i32.const 13) (i32.const 1040))
    (return (call $ok_nil)))
    ;; 5: dml, object name out of bounds
    (call $dml (i32.const 0) (i32.const 131070) (i32.const 7) (i32.const 2096) (i32.const 13) (i32.const 1040))
    (return (call $ok_nil)))
    ;; 6: dml, rows out of bounds
    (call $dml (i32.const 0) (i32.const 2080) (i32.const 7) (i32.const -16) (i32.const 32) (i32.const 1040))
    (return (call $ok_nil)))
    ;; 7: callout, request out of bounds
    (call $callout (i32.const 200000) (i32.const 10) (i32.const 1040))
    (return (call $ok_nil)))
    ;; 8: callout, return area out of bounds
    (call $callout (i32.const 2096) (i32.const 13) (i32.const 131068))
    (return (call $ok_nil)))
    ;; 9: log with level 9, not a level
    (call $log (i32.const 9) (i32.const 2048) (i32.const 6))
    (return (call $ok_nil)))
    ;; 10: log, message out of bounds
    (call $log (i32.const 1) (i32.const 131000) (i32.const 1000))
    (return (call $ok_nil)))
    ;; 11: usage, return area out of bounds
    (call $usage (i32.const -4))
    (return (call $ok_nil)))
    ;; 12: handle returns a return area out of bounds
    (return (i32.const 0xFFFFFFF0)))
    ;; 13: handle returns a result with discriminant 7
    (i32.store8 (i32.const 1024) (i32.const 7))
    (return (i32.const 1024)))
    ;; 14: handle returns ok with a payload out of bounds
    (return (call $result (i32.const 0) (i32.const 131000) (i32.const 4096))))
    ;; 15: log with invalid UTF-8
    (call $log (i32.const 1) (i32.const 2128) (i32.const 14))
    (return (call $ok_nil)))
    ;; 16: query with malformed msgpack binds
    (call $query (i32.const 2048) (i32.const 22) (i32.const 2144) (i32.const 1) (i32.const 1040))
    (return (call $ok_nil)))
    ;; 17: dml with truncated msgpack rows
    (call $dml (i32.const 0) (i32.const 2080) (i32.const 7) (i32.const 2148) (i32.const 2) (i32.const 1040))
    (return (call $ok_nil)))
    ;; 18: callout with a truncated msgpack request
    (call $callout (i32.const 2152) (i32.const 3) (i32.const 1040))
    (return (call $ok_nil)))
    ;; 19: handle returns malformed msgpack
    (return (call $result (i32.const 0) (i32.const 2144) (i32.const 1))))
    ;; 20: handle returns err with invalid UTF-8
    (return (call $result (i32.const 1) (i32.const 2128) (i32.const 14))))
  ;; 21: query with invalid UTF-8 SOQL
  (call $query (i32.const 2128) (i32.const 14) (i32.const 0) (i32.const 0) (i32.const 1040))
  (call $ok_nil))
