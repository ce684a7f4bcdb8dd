//! `circuit:script/log`: lines for the execution's debug log, formatted with `std.fmt`
//! (`circuit.log.info("scored {d} contacts", .{n})`).

const std = @import("std");
const abi = @import("abi.zig");
const arena = @import("arena.zig");

pub fn debug(comptime fmt: []const u8, args: anytype) void {
    print(.debug, fmt, args);
}

pub fn info(comptime fmt: []const u8, args: anytype) void {
    print(.info, fmt, args);
}

pub fn warn(comptime fmt: []const u8, args: anytype) void {
    print(.warn, fmt, args);
}

/// `error` is a keyword, hence `err`.
pub fn err(comptime fmt: []const u8, args: anytype) void {
    print(.err, fmt, args);
}

/// Writes `message` as is (no formatting), e.g. text that contains braces.
pub fn write(level: abi.Level, message: []const u8) void {
    abi.write(level, message);
}

fn print(level: abi.Level, comptime fmt: []const u8, args: anytype) void {
    if (@typeInfo(@TypeOf(args)).@"struct".field_names.len == 0) return abi.write(level, fmt);
    // Logging must not fail the call: out of memory logs the unformatted template instead.
    const message = std.fmt.allocPrint(arena.allocator, fmt, args) catch return abi.write(level, fmt);
    defer arena.allocator.free(message);
    abi.write(level, message);
}
