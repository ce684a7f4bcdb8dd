//! The root of every circuit build: wires the author's module ("script", their circuit.zig)
//! to the SDK ("circuit"). Zig only analyses what the root reaches, so the exports live here
//! rather than in the SDK, and circuit sources stay free of boilerplate.

const std = @import("std");
const circuit = @import("circuit");

comptime {
    circuit.exportHandler(@import("script"));
}

pub const panic = std.debug.FullPanic(circuit.panic);
