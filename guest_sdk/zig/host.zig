//! Shared steps of every host call: encode the argument, decode the reply, and turn an `err`
//! reply into a Zig error whose message `circuit.lastError()` returns.

const abi = @import("abi.zig");
const arena = @import("arena.zig");
const errors = @import("errors.zig");
const msgpack = @import("msgpack.zig");

pub fn encode(x: anytype) error{OutOfMemory}![]u8 {
    return msgpack.encode(arena.allocator, x);
}

/// Decodes a reply the host produced. Malformed bytes mean host and guest disagree on the ABI,
/// which no author can handle, so it panics (the guest traps with the message logged).
pub fn decode(bytes: []const u8, comptime what: []const u8) error{OutOfMemory}!msgpack.Value {
    return msgpack.decode(arena.allocator, bytes) catch |e| switch (e) {
        error.OutOfMemory => error.OutOfMemory,
        else => @panic("malformed msgpack in the host's " ++ what ++ " reply"),
    };
}

/// The decoded ok value, or `err` with the host's message remembered.
pub fn result(
    reply: abi.Reply,
    comptime err: anytype,
    comptime what: []const u8,
) (@TypeOf(err) || error{OutOfMemory})!msgpack.Value {
    return switch (reply) {
        .ok => |bytes| decode(bytes, what),
        .err => |message| errors.remember(err, message),
    };
}

/// A reply field that must be there; a missing one is the same ABI break as malformed bytes.
pub fn field(v: msgpack.Value, comptime name: []const u8, comptime what: []const u8) msgpack.Value {
    const f = v.get(name);
    if (f.isNil()) @panic("the host's " ++ what ++ " reply has no " ++ name);
    return f;
}
