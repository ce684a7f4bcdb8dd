//! The root of a circuit's test build (world `circuit-test`): the circuit's `handle` (so the host
//! can fire it as a trigger from a test's DML) plus the tests' `list-tests` and `run-test`.

const std = @import("std");
const circuit = @import("circuit");
const testing = @import("testing");

comptime {
    circuit.exportHandler(@import("script"));
    testing.exportTests(@import("tests"));
}

pub const panic = std.debug.FullPanic(circuit.panic);
