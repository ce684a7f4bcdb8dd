//! after_insert on Task: marks each task's contact with Department = "Has tasks" (an update,
//! which fires the Contact update triggers in turn).

const circuit = @import("circuit");

pub fn handle(ctx: *circuit.Context) !circuit.Output {
    const Touch = struct { Id: []const u8, Department: []const u8 };
    const touches = try ctx.allocator.alloc(Touch, ctx.new.len);
    for (ctx.new, touches) |task, *t| t.* = .{ .Id = task.get("WhoId").asStr() orelse "", .Department = "Has tasks" };
    if (touches.len > 0) _ = try circuit.records.update("Contact", touches);
    return circuit.output(.{ .touched = touches.len });
}
