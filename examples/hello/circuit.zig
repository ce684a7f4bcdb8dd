//! Greets every new record in the log and reports how many it greeted.

const circuit = @import("circuit");

pub fn handle(ctx: *circuit.Context) !circuit.Output {
    for (ctx.new) |rec| {
        const name = rec.get("FirstName").asStr() orelse rec.get("Name").asStr() orelse "there";
        circuit.log.info("Hello, {s}! ({s} {t})", .{ name, ctx.object, ctx.operation });
    }
    return circuit.output(.{ .greeted = ctx.new.len });
}
