//! `circuit:script/jobs` (ABI 1.1.0): queueable circuits. `circuit.jobs.enqueue("enrich", .{ .id = id })`
//! asks for a job that runs circuit "enrich" later, in its own execution, with the event
//! {"kind": "job", "payload": ...}; its `handleJob` receives it. The job is enqueued only if this
//! execution commits; the id returned is the job's key ("exec:<execution id>:<n>").

const abi = @import("abi.zig");
const arena = @import("arena.zig");
const errors = @import("errors.zig");
const msgpack = @import("msgpack.zig");

/// `payload` is any value `circuit.encode` takes (maps, arrays, strings, numbers, bools, null).
/// `error.Failed` (message in `circuit.lastError()`): unknown circuit, payload too large or not
/// JSON-like, or the job chain depth limit. Over the `async_jobs` limit the execution ends.
pub fn enqueue(circuit: []const u8, payload: anytype) (errors.Error || error{OutOfMemory})![]const u8 {
    const bytes = try msgpack.encode(arena.allocator, payload);
    return switch (abi.enqueue(circuit, bytes)) {
        .ok => |id| id,
        .err => |message| errors.remember(error.Failed, message),
    };
}
