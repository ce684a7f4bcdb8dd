//! Pings https://api.example/ping once per new Contact whose LeadSource is "Ping" and writes the
//! outcome to its Description; a failed callout is caught (so only the test framework can
//! notice an unmatched one).

const std = @import("std");
const circuit = @import("circuit");

pub fn handle(ctx: *circuit.Context) !circuit.Output {
    const Row = struct { Id: []const u8, Description: []const u8 };
    var rows: std.ArrayList(Row) = .empty;
    for (ctx.new) |contact| {
        const source = contact.get("LeadSource").asStr() orelse continue;
        if (!std.mem.eql(u8, source, "Ping")) continue;
        const outcome = if (circuit.http.callout(.{ .url = "https://api.example/ping" })) |response|
            try std.fmt.allocPrint(ctx.allocator, "pinged {d} {s}", .{ response.status, response.body })
        else |e| switch (e) {
            error.CalloutFailed => "ping failed",
            else => return e,
        };
        try rows.append(ctx.allocator, .{ .Id = contact.get("Id").asStr() orelse "", .Description = outcome });
    }
    if (rows.items.len > 0) _ = try circuit.records.update("Contact", rows.items);
    return circuit.output(.{ .pinged = rows.items.len });
}
