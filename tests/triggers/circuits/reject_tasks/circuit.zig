//! before_insert on Task: refuses every task, the way an Apex trigger calls addError().

const circuit = @import("circuit");

pub fn handle(ctx: *circuit.Context) !circuit.Output {
    return circuit.fail("tasks are frozen ({d} refused)", .{ctx.new.len});
}
