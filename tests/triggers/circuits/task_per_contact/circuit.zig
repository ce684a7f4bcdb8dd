//! after_insert on Contact: opens one Task per new contact (DML on other records).

const std = @import("std");
const circuit = @import("circuit");

pub fn handle(ctx: *circuit.Context) !circuit.Output {
    const Task = struct { Subject: []const u8, WhoId: []const u8 };
    const tasks = try ctx.allocator.alloc(Task, ctx.new.len);
    for (ctx.new, tasks) |contact, *t| {
        const name = contact.get("LastName").asStr() orelse "?";
        t.* = .{
            .Subject = try std.fmt.allocPrint(ctx.allocator, "Follow up {s}", .{name}),
            .WhoId = contact.get("Id").asStr() orelse "",
        };
    }
    if (tasks.len > 0) _ = try circuit.records.insert("Task", tasks);
    return circuit.output(.{ .tasks = tasks.len });
}
