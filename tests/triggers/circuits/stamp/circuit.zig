//! before_insert / before_update on Contact: sets Title = "Stamped" on every record.
//! Returns only the changed field; the host overlays it on the record before saving.

const circuit = @import("circuit");

pub fn handle(ctx: *circuit.Context) !circuit.Output {
    const Change = struct { Title: []const u8 };
    const changes = try ctx.allocator.alloc(Change, ctx.new.len);
    for (changes) |*c| c.* = .{ .Title = "Stamped" };
    return circuit.output(.{ .new = changes });
}
