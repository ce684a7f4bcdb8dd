//! The message behind the last error an SDK call returned, so that authors get Zig error
//! unions (`try`, `catch`) and can still read what the host said (`circuit.lastError()`).

const std = @import("std");
const arena = @import("arena.zig");

/// Every error the SDK's calls return. `Failed` is the author's own (see `fail`).
pub const Error = error{ QueryFailed, DmlFailed, CalloutFailed, Failed, OutOfMemory };

var last_error: ?anyerror = null;
var last_message: []const u8 = "";

/// Records `message` as the reason for `err` and returns `err`, for `return remember(...)`.
pub fn remember(comptime err: anytype, message: []const u8) @TypeOf(err) {
    last_error = err;
    last_message = message;
    return err;
}

/// The message of the most recent failed call ("" when none failed in this handle call).
pub fn lastMessage() []const u8 {
    return last_message;
}

pub fn clear() void {
    last_error = null;
    last_message = "";
}

/// Ends `handle` with a formatted message: `return circuit.fail("no Account {s}", .{id});`.
pub fn fail(comptime fmt: []const u8, args: anytype) error{Failed} {
    const message = std.fmt.allocPrint(arena.allocator, fmt, args) catch fmt;
    return remember(error.Failed, message);
}

/// The `err` text for an error that escaped `handle`: host errors carry the host's message
/// ("QueryFailed: unknown field Foo"), `fail` its own text, anything else just its name.
pub fn describe(err: anyerror) []const u8 {
    const remembered = last_error orelse return @errorName(err);
    if (remembered != err) return @errorName(err);
    if (err == error.Failed) return last_message;
    return std.fmt.allocPrint(arena.allocator, "{s}: {s}", .{ @errorName(err), last_message }) catch @errorName(err);
}
