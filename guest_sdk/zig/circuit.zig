//! Circuit Script guest SDK for Zig: write `pub fn handle(ctx: *circuit.Context) !circuit.Output`
//! and never touch a pointer. See README.md for the whole API and how to build.
//!
//! Memory: everything lives in a per-call arena (`ctx.allocator`, `circuit.allocator`) that is
//! reset after the host has read the result, so circuits allocate freely and free nothing.

const std = @import("std");
const abi = @import("abi.zig");
const arena = @import("arena.zig");
const errors = @import("errors.zig");
const msgpack = @import("msgpack.zig");

pub const Value = msgpack.Value;
/// A record: a map of field name to scalar. `rec.get("Email").asStr()`, missing = null.
pub const Record = Value;
/// Wrap a byte slice in `Bytes` to send it as msgpack bin instead of str.
pub const Bytes = msgpack.Bytes;
pub const Encoder = msgpack.Encoder;
pub const Context = @import("trigger.zig").Context;
pub const Operation = @import("trigger.zig").Operation;

pub const records = @import("records.zig");
pub const http = @import("http.zig");
pub const log = @import("log.zig");
pub const limits = @import("limits.zig");
pub const jobs = @import("jobs.zig");
/// The event of an asynchronous execution (a job, a schedule tick, a batch phase).
pub const AsyncContext = @import("async_event.zig").AsyncContext;

pub const Error = errors.Error;
pub const fail = errors.fail;

/// The per-call arena allocator (the same as `ctx.allocator`).
pub const allocator = arena.allocator;

/// The host's message for the last failed SDK call (or `fail`'s text): after
/// `records.query(...) catch |e|`, this says what was wrong with the query.
pub fn lastError() []const u8 {
    return errors.lastMessage();
}

/// The `ok` result of `handle`: msgpack bytes, built with `output(...)`.
pub const Output = struct {
    msgpack: []const u8,

    /// nil: for before triggers, "no changes".
    pub const none: Output = .{ .msgpack = &.{0xc0} };
};

/// Encodes any value as the result: `circuit.output(.{ .greeted = n })` gives {"greeted": n};
/// a before trigger returns `circuit.output(.{ .new = ctx.new })` to save its edits.
pub fn output(value: anytype) error{OutOfMemory}!Output {
    return .{ .msgpack = try msgpack.encode(arena.allocator, value) };
}

/// Decodes msgpack bytes (e.g. an HTTP body) into a Value living in the per-call arena.
pub fn decode(bytes: []const u8) msgpack.DecodeError!Value {
    return msgpack.decode(arena.allocator, bytes);
}

/// Encodes a value as msgpack bytes in the per-call arena (e.g. an HTTP body).
pub fn encode(value: anytype) error{OutOfMemory}![]u8 {
    return msgpack.encode(arena.allocator, value);
}

/// Exports the ABI entry points around `script.handle`. The build's root file (entry.zig)
/// calls it, so a circuit source only declares `handle`.
pub fn exportHandler(comptime script: type) void {
    if (!@hasDecl(script, "handle"))
        @compileError("a circuit must declare `pub fn handle(ctx: *circuit.Context) !circuit.Output`");
    abi.exportHandle(struct {
        fn run(event: []const u8) abi.Reply {
            return runHandle(script, event);
        }
    }.run);
}

fn runHandle(comptime script: type, bytes: []const u8) abi.Reply {
    errors.clear();
    const event = msgpack.decode(arena.allocator, bytes) catch |e| return .{ .err = errors.describe(switch (e) {
        error.OutOfMemory => error.OutOfMemory,
        else => errors.remember(error.Failed, "malformed event: not a msgpack value"),
    }) };
    if (AsyncContext.fromEvent(arena.allocator, event)) |async_ctx| {
        var actx = async_ctx;
        return runAsync(script, &actx);
    }
    var ctx = Context.fromEvent(arena.allocator, event) catch |e| return .{ .err = errors.describe(e) };
    return finish(script.handle(&ctx));
}

/// `script.handleJob`, `handleSchedule` or `handleBatch`, for the asynchronous event kinds: a
/// circuit declares only those it handles; another kind is an err naming it.
fn runAsync(comptime script: type, ctx: *AsyncContext) abi.Reply {
    switch (ctx.kind) {
        .job => if (@hasDecl(script, "handleJob")) return finish(script.handleJob(ctx)),
        .schedule => if (@hasDecl(script, "handleSchedule")) return finish(script.handleSchedule(ctx)),
        .batch_start, .batch_execute, .batch_finish => if (@hasDecl(script, "handleBatch")) return finish(script.handleBatch(ctx)),
    }
    return .{ .err = errors.describe(errors.fail("this circuit has no handler for '{s}' events", .{@tagName(ctx.kind)})) };
}

fn finish(result: anytype) abi.Reply {
    const value = switch (@typeInfo(@TypeOf(result))) {
        .error_union => result catch |e| return .{ .err = errors.describe(e) },
        else => result,
    };
    const bytes: []const u8 = switch (@TypeOf(value)) {
        Output => value.msgpack,
        void => Output.none.msgpack,
        else => msgpack.encode(arena.allocator, value) catch return .{ .err = "OutOfMemory: encoding the result" },
    };
    return .{ .ok = bytes };
}

/// Panics (safety checks, `@panic`, malformed host replies) log their message at error level
/// before trapping, so the execution record says why the guest stopped.
pub fn panic(message: []const u8, _: ?usize) noreturn {
    const state = struct {
        var panicking = false;
    };
    if (!state.panicking) {
        state.panicking = true;
        var buf: [512]u8 = undefined;
        const line = std.fmt.bufPrint(&buf, "panic: {s}", .{message}) catch message;
        abi.write(.err, line);
    }
    @trap();
}
