//! Test scheduled circuit: each schedule tick inserts one Tick_Seen__c row naming the tick and the
//! schedule, so the fleet tests can count how often each tick ran.

const circuit = @import("circuit");

pub fn handle(ctx: *circuit.Context) !circuit.Output {
    _ = ctx;
    return circuit.Output.none;
}

pub fn handleSchedule(ctx: *circuit.AsyncContext) !circuit.Output {
    const Seen = struct { Name: []const u8, Schedule__c: []const u8 };
    const row = Seen{
        .Name = ctx.event.get("tick").asStr() orelse "",
        .Schedule__c = ctx.event.get("schedule").asStr() orelse "",
    };
    _ = try circuit.records.insert("Tick_Seen__c", &[_]Seen{row});
    return circuit.Output.none;
}
