//! The trigger event (event v1) as the typed `Context` a circuit's `handle` receives.

const std = @import("std");
const errors = @import("errors.zig");
const msgpack = @import("msgpack.zig");
const Value = msgpack.Value;

pub const Operation = enum {
    before_insert,
    before_update,
    before_delete,
    after_insert,
    after_update,
    after_delete,
    after_undelete,

    /// Before triggers may change the records being saved by returning `{"new": [...]}`.
    pub fn isBefore(op: Operation) bool {
        return switch (op) {
            .before_insert, .before_update, .before_delete => true,
            else => false,
        };
    }
};

pub const Context = struct {
    /// The per-call arena: free-for-all until `handle` returns, nothing to free by hand.
    allocator: std.mem.Allocator,
    /// The object the trigger fired on, e.g. "Contact".
    object: []const u8,
    operation: Operation,
    /// The records after the change (empty for *_delete). Mutable, for before triggers.
    new: []Value,
    /// The records before the change (empty for *_insert and *_undelete).
    old: []Value,
    /// The whole decoded event, for fields newer than this SDK.
    event: Value,

    /// Builds the context from the event bytes; a malformed or unknown event is `error.Failed`
    /// with the reason remembered, and becomes the call's `err` result.
    pub fn parse(gpa: std.mem.Allocator, bytes: []const u8) error{ Failed, OutOfMemory }!Context {
        const event = msgpack.decode(gpa, bytes) catch |e| switch (e) {
            error.OutOfMemory => return error.OutOfMemory,
            else => return errors.remember(error.Failed, "malformed event: not a msgpack value"),
        };
        return fromEvent(gpa, event);
    }

    /// The context of an already decoded event.
    pub fn fromEvent(gpa: std.mem.Allocator, event: Value) error{ Failed, OutOfMemory }!Context {
        const kind = event.get("kind").asStr() orelse "";
        if (!std.mem.eql(u8, kind, "trigger"))
            return errors.fail("unsupported event kind '{s}' (this SDK handles 'trigger')", .{kind});
        const op_name = event.get("operation").asStr() orelse "";
        const operation = std.meta.stringToEnum(Operation, op_name) orelse
            return errors.fail("unknown trigger operation '{s}'", .{op_name});
        return .{
            .allocator = gpa,
            .object = event.get("object").asStr() orelse "",
            .operation = operation,
            .new = event.get("new").items(),
            .old = event.get("old").items(),
            .event = event,
        };
    }
};
