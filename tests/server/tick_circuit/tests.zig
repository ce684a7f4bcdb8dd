//! The tick circuit's one test: a tick inserts its row (what the deploy gate runs before a promotion).

const circuit = @import("circuit");
const t = @import("testing");
const script = @import("script");

pub const tests = .{
    .a_tick_inserts_one_row = aTickInsertsOneRow,
};

fn aTickInsertsOneRow() !void {
    const event = try circuit.decode(try circuit.encode(.{ .kind = "schedule", .schedule = "s", .tick = "2026-01-01T00:00:00+00:00" }));
    var tick = circuit.AsyncContext.fromEvent(circuit.allocator, event) orelse return circuit.fail("not a schedule event", .{});
    _ = try script.handleSchedule(&tick);
    const rows = try circuit.records.query("SELECT Name, Schedule__c FROM Tick_Seen__c", .{});
    try t.expectEqual("rows", 1, rows.records.len);
}
