//! The events of asynchronous executions (ABI 1.1.0): a queueable job, a schedule tick, a batch's
//! start, chunk or finish. `handle` keeps receiving trigger events; these go to `handleJob`,
//! `handleSchedule` and `handleBatch` (`pub fn handleJob(ctx: *circuit.AsyncContext) !circuit.Output`).

const std = @import("std");
const msgpack = @import("msgpack.zig");
const Value = msgpack.Value;

pub const Kind = enum { job, schedule, batch_start, batch_execute, batch_finish };

pub const AsyncContext = struct {
    allocator: std.mem.Allocator,
    kind: Kind,
    /// What `jobs.enqueue` (or the schedule's `payload`) passed; for a batch, its `payload` too.
    payload: Value,
    /// batch-execute: the chunk's records (the start query's rows), in Id order; else empty.
    records: []Value,
    /// The whole decoded event: "depth" of a job, "tick" of a schedule, a batch's "batch_id",
    /// "summary" for batch-finish.
    event: Value,

    /// null for any other event (a trigger event, left to `handle`); an async event's typed view otherwise.
    pub fn fromEvent(gpa: std.mem.Allocator, event: Value) ?AsyncContext {
        const name = event.get("kind").asStr() orelse return null;
        const kinds = [_]struct { []const u8, Kind }{
            .{ "job", .job },                     .{ "schedule", .schedule },
            .{ "batch-start", .batch_start },     .{ "batch-execute", .batch_execute },
            .{ "batch-finish", .batch_finish },
        };
        for (kinds) |entry| {
            if (std.mem.eql(u8, name, entry[0])) return .{
                .allocator = gpa,
                .kind = entry[1],
                .payload = event.get("payload"),
                .records = event.get("records").items(),
                .event = event,
            };
        }
        return null;
    }
};
