//! Test batch circuit: start returns the query, each chunk inserts one Batch_Seen__c row per item
//! (Name = the item's Id), finish inserts one row named "finish" holding records_processed. An
//! item marked "trap" traps its chunk; the payload's "spin" burns that many loop turns per chunk,
//! "start_spin" as many in start.

const std = @import("std");
const circuit = @import("circuit");

pub fn handle(ctx: *circuit.Context) !circuit.Output {
    _ = ctx;
    return circuit.Output.none;
}

fn spin(turns_asked: ?i64) void {
    var turns = turns_asked orelse 0;
    var sum: u64 = 0;
    while (turns > 0) : (turns -= 1) {
        sum +%= @as(u64, @intCast(turns));
        std.mem.doNotOptimizeAway(sum);
    }
}

pub fn handleBatch(ctx: *circuit.AsyncContext) !circuit.Output {
    const Seen = struct { Name: []const u8, Chunk__c: i64 };
    switch (ctx.kind) {
        .batch_start => {
            spin(ctx.payload.get("start_spin").asInt());
            return circuit.output(.{ .query = "SELECT Id, Mark__c FROM Batch_Item__c WHERE Name != null" });
        },
        .batch_execute => {
            const chunk = ctx.event.get("chunk").asInt() orelse -1;
            spin(ctx.payload.get("spin").asInt());
            const seen = try ctx.allocator.alloc(Seen, ctx.records.len);
            for (ctx.records, seen) |item, *row| {
                const mark = item.get("Mark__c").asStr() orelse "";
                if (std.mem.eql(u8, mark, "trap")) @trap();
                row.* = .{ .Name = item.get("Id").asStr() orelse "", .Chunk__c = chunk };
            }
            if (seen.len > 0) _ = try circuit.records.insert("Batch_Seen__c", seen);
            return circuit.output(.{ .seen = seen.len });
        },
        .batch_finish => {
            const summary = ctx.event.get("summary");
            const processed = summary.get("records_processed").asInt() orelse -1;
            const failed = summary.get("chunks_failed").asInt() orelse -1;
            circuit.log.info("finished: {d} records processed, {d} chunks failed", .{ processed, failed });
            _ = try circuit.records.insert("Batch_Seen__c", &[_]Seen{.{ .Name = "finish", .Chunk__c = processed }});
            return circuit.Output.none;
        },
        else => return circuit.fail("not a batch event", .{}),
    }
}
