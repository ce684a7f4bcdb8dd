//! `circuit:script/limits`: how much of each governor limit this execution has used.

const host = @import("host.zig");
const abi = @import("abi.zig");
const Value = @import("msgpack.zig").Value;

pub const Limit = struct { used: i64, limit: i64 };

pub const Usage = struct {
    /// The host's map {resource: [used, limit]}.
    value: Value,

    /// One resource: fuel, timeout_ms, memory_bytes, queries, query_rows, query_bytes, dml_statements,
    /// dml_rows, callouts, callout_time_ms, log_bytes, input_bytes, output_bytes, async_jobs.
    pub fn get(self: Usage, resource: []const u8) ?Limit {
        const pair = self.value.get(resource).items();
        if (pair.len != 2) return null;
        return .{ .used = pair[0].asInt() orelse 0, .limit = pair[1].asInt() orelse 0 };
    }

    /// What is left of a resource (0 when unknown).
    pub fn remaining(self: Usage, resource: []const u8) i64 {
        const l = self.get(resource) orelse return 0;
        return @max(l.limit - l.used, 0);
    }
};

pub fn usage() error{OutOfMemory}!Usage {
    return .{ .value = try host.decode(abi.usage(), "limits.usage") };
}
