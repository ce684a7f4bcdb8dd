//! Tests of the test framework itself; several are meant to fail (see tests/testing/test_runner.py).

const std = @import("std");
const circuit = @import("circuit");
const t = @import("testing");

pub const tests = .{
    .mock_sequence = mockSequence,
    .unmatched_callout = unmatchedCallout,
    .method_must_match = methodMustMatch,
    .latest_mock_wins = latestMockWins,
    .unknown_mock_id = unknownMockId,
    .factory_defaults = factoryDefaults,
    .factory_contact_defaults = factoryContactDefaults,
    .factory_bad_object = factoryBadObject,
    .start_stop_resets_limits = startStopResetsLimits,
    .without_start_limits_bite = withoutStartLimitsBite,
    .stop_without_start = stopWithoutStart,
    .isolation_writes = isolationWrites,
    .isolation_reads = isolationReads,
    .assert_message = assertMessage,
    .hard_fail = hardFail,
    .traps = traps,
    .uncaught_query_error = uncaughtQueryError,
};

fn pings(count: i64) ![]const []const u8 {
    return t.createRecords("Contact", .{ .count = count, .fields = .{ .LastName = "P{n}", .LeadSource = "Ping" } });
}

fn description(id: []const u8) !circuit.Value {
    return (try t.getRecord("Contact", "Description", id)).get("Description");
}

fn mockSequence() !void {
    const mock = try t.mockCallout(.{ .method = "GET", .url = "https://api.example/*", .responses = .{
        .{ .status = 200, .body = "a" },
        .{ .status = 500, .body = "b" },
    } });
    const ids = try pings(3);
    try t.expectEqual("calls", 3, try mock.calls());
    try t.expectEqual("first", "pinged 200 a", try description(ids[0]));
    try t.expectEqual("second", "pinged 500 b", try description(ids[1]));
    try t.expectEqual("third (the last response repeats)", "pinged 500 b", try description(ids[2]));
}

fn unmatchedCallout() !void {
    _ = try pings(1);
}

fn methodMustMatch() !void {
    _ = try t.mockCallout(.{ .method = "POST", .url = "https://api.example/ping", .response = .{ .status = 200 } });
    _ = try pings(1);
}

fn latestMockWins() !void {
    const first = try t.mockCallout(.{ .url = "https://api.example/*", .response = .{ .status = 200, .body = "old" } });
    const second = try t.mockCallout(.{ .url = "https://api.example/ping", .response = .{ .status = 201, .body = "new" } });
    const ids = try pings(1);
    try t.expectEqual("description", "pinged 201 new", try description(ids[0]));
    try t.expectEqual("first mock calls", 0, try first.calls());
    try t.expectEqual("second mock calls", 1, try second.calls());
}

fn unknownMockId() !void {
    const ghost: t.Mock = .{ .id = 42 };
    _ = try ghost.calls();
}

fn factoryDefaults() !void {
    const ids = try t.createRecords("Widget__c", .{ .count = 3, .fields = .{ .Size__c = 7 } });
    try t.expectEqual("ids", 3, ids.len);
    const widgets = try circuit.records.query("SELECT Size__c, Kind__c, Due__c, Owner__c, Code__c FROM Widget__c", .{});
    try t.expectEqual("widgets", 3, widgets.records.len);
    for (widgets.records) |w| {
        try t.expectEqual("Size__c (given)", 7, w.get("Size__c"));
        try t.expectEqual("Kind__c (first picklist value)", "Small", w.get("Kind__c"));
        try t.expectEqual("Due__c", "2024-01-01", w.get("Due__c"));
        try t.expect("Owner__c is set", w.get("Owner__c").asStr() != null);
    }
    const accounts = try circuit.records.query("SELECT COUNT() FROM Account", .{});
    try t.expectEqual("parent accounts (one shared)", 1, accounts.total_size);
}

fn factoryContactDefaults() !void {
    const id = try t.createRecord("Contact", .{ .FirstName = "Ada" });
    const contact = try t.getRecord("Contact", "FirstName, LastName", id);
    try t.expectEqual("LastName (required, defaulted)", "Test LastName 0", contact.get("LastName"));
}

fn factoryBadObject() !void {
    _ = try t.createRecords("Nope__c", .{});
}

fn queries(n: usize) !void {
    for (0..n) |_| _ = try circuit.records.query("SELECT Id FROM Account LIMIT 1", .{});
}

fn startStopResetsLimits() !void {
    try queries(60);
    t.startTest();
    try t.expectEqual("queries after startTest", 0, try t.used("queries"));
    try queries(60);
    try t.expectEqual("queries inside", 60, try t.used("queries"));
    t.stopTest();
    try t.expectEqual("queries after stopTest", 60, try t.used("queries"));
}

fn withoutStartLimitsBite() !void {
    try queries(120);
}

fn stopWithoutStart() !void {
    t.stopTest();
}

fn isolationWrites() !void {
    _ = try t.createRecord("Account", .{ .Name = "Iso" });
    const n = try circuit.records.query("SELECT COUNT() FROM Account", .{});
    try t.expectEqual("accounts", 1, n.total_size);
}

fn isolationReads() !void {
    const n = try circuit.records.query("SELECT COUNT() FROM Account", .{});
    try t.expectEqual("accounts left by other tests", 0, n.total_size);
}

fn assertMessage() !void {
    const v = try circuit.decode(try circuit.encode(.{ .Grade = "B", .Score = 42 }));
    try t.expectEqual("Score", 42, v.get("Score"));
    try t.expectEqual("Grade", "A", v.get("Grade"));
}

fn hardFail() !void {
    t.fail("stopped at {d}", .{3});
}

fn traps() !void {
    @panic("kaboom");
}

fn uncaughtQueryError() !void {
    _ = try circuit.records.query("SELECT Nope FROM Account", .{});
}
