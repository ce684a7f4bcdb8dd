//! after_insert on Contact: for a contact whose Department is "remaining:N" with N > 0, inserts
//! one more contact with "remaining:N-1". A chain of N nested trigger levels, for depth tests.

const std = @import("std");
const circuit = @import("circuit");

pub fn handle(ctx: *circuit.Context) !circuit.Output {
    var inserted: usize = 0;
    for (ctx.new) |contact| {
        const department = contact.get("Department").asStr() orelse continue;
        const prefix = "remaining:";
        if (!std.mem.startsWith(u8, department, prefix)) continue;
        const left = std.fmt.parseInt(u32, department[prefix.len..], 10) catch continue;
        if (left == 0) continue;
        const next = try std.fmt.allocPrint(ctx.allocator, "remaining:{d}", .{left - 1});
        _ = try circuit.records.insert("Contact", &[_]struct { LastName: []const u8, Department: []const u8 }{
            .{ .LastName = "chain", .Department = next },
        });
        inserted += 1;
    }
    return circuit.output(.{ .inserted = inserted });
}
