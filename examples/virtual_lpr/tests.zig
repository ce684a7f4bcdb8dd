//! Virtual LPR's tests (run with `circuit test examples/virtual_lpr`). Each test runs in a fresh
//! instance and a fresh records transaction that is rolled back afterwards. Inserting Contacts
//! fires this circuit as the Contact after_insert trigger, exactly as in production.

const std = @import("std");
const circuit = @import("circuit");
const t = @import("testing");
const script = @import("script");

pub const tests = .{
    .high_intent_lead_scores_a = highIntentLeadScoresA,
    .bulk_insert_of_200_uses_fewer_than_10_callouts = bulkInsertOf200,
    .census_mock_is_called_exactly_once = censusMockCalledOnce,
    .census_failure_scores_without_enrichment = censusFailureDegrades,
    .low_intent_lead_is_grade_d_without_task = lowIntentLeadIsGradeD,
    .messy_numbers_count_as_truncated_and_non_negative = messyNumbers,
    .score_of_an_empty_contact_is_zero = emptyContactScoresZero,
    .grade_a_batch_enqueues_one_enrichment_job = gradeABatchEnqueuesOneJob,
    .enrichment_job_stores_household_income = enrichmentJobStoresIncome,
    .a_schedule_tick_enqueues_enrichment_for_unenriched_grade_a = scheduleEnqueuesEnrichment,
};

const census_url = "https://census.example/v1/income";

/// The census setting the circuit reads, and a mock answering for `zips` with `income`.
fn mockCensus(income: i64) !t.Mock {
    _ = try t.createRecord("Circuit_Setting__c", .{ .Name = "census_url", .Value__c = census_url });
    return t.mockCallout(.{
        .method = "POST",
        .url = "https://census.example/*",
        .response = .{
            .status = 200,
            .headers = .{ .@"content-type" = "application/msgpack" },
            .body = try t.msgpackBody(.{
                .@"94105" = .{ .median_household_income = income },
                .@"10001" = .{ .median_household_income = 96_500 },
            }),
        },
    });
}

const priya = .{
    .FirstName = "Priya",
    .LastName = "Raman",
    .Title = "Chief Revenue Officer",
    .Email = "priya.raman@northwindlogistics.com",
    .Company_Size__c = 450,
    .Website_Visits__c = 14,
    .Emails_Opened__c = 3,
    .Called_Business__c = true,
    .LeadSource = "Referral",
    .MailingPostalCode = "94105",
};

fn highIntentLeadScoresA() !void {
    const id = try t.createRecord("Contact", priya);
    const contact = try t.getRecord("Contact", "VLPR_Score__c, VLPR_Grade__c, Next_Action__c", id);
    try t.expectAtLeast("VLPR_Score__c", 70, contact.get("VLPR_Score__c"));
    try t.expectEqual("VLPR_Score__c without census", 86, contact.get("VLPR_Score__c"));
    try t.expectEqual("VLPR_Grade__c", "A", contact.get("VLPR_Grade__c"));
    try t.expectEqual("Next_Action__c", "Call within 1 hour", contact.get("Next_Action__c"));
    const tasks = try circuit.records.query("SELECT Subject, Priority FROM Task WHERE WhoId = :id", .{ .id = id });
    try t.expectEqual("grade-A tasks", 1, tasks.records.len);
    try t.expectEqual("Task.Subject", "CRITICAL: call Priya Raman (VLPR 86)", tasks.records[0].get("Subject"));
    try t.expectEqual("Task.Priority", "High", tasks.records[0].get("Priority"));
}

fn bulkInsertOf200() !void {
    const census = try mockCensus(149_800);
    t.startTest();
    _ = try t.createRecords("Contact", .{ .count = 200, .fields = .{
        .LastName = "Bulk {n}",
        .Email = "lead{n}@acme.io",
        .Website_Visits__c = 3,
        .MailingPostalCode = "94105",
    } });
    try t.expectLessThan("callouts for 200 contacts", 10, try t.used("callouts"));
    try t.expectLessThan("queries for 200 contacts", 10, try t.used("queries"));
    t.stopTest();
    const scored = try circuit.records.query("SELECT COUNT() FROM Contact WHERE VLPR_Score__c != null", .{});
    try t.expectEqual("scored contacts", 200, scored.total_size);
    try t.expectEqual("census calls", 1, try census.calls());
}

fn censusMockCalledOnce() !void {
    const census = try mockCensus(149_800);
    _ = try t.createRecords("Contact", .{ .count = 5, .fields = priya });
    try t.expectEqual("census calls", 1, try census.calls());
    const request = (try census.requests())[0];
    try t.expectEqual("census request method", "POST", request.get("method"));
    const body = try circuit.decode(request.get("body").bin);
    const zips = body.get("zips").items();
    try t.expectEqual("distinct zips sent", 1, zips.len);
    try t.expectEqual("zip sent", "94105", zips[0]);
    const scored = try circuit.records.query("SELECT VLPR_Score__c FROM Contact", .{});
    for (scored.records) |rec| try t.expectEqual("VLPR_Score__c with census", 96, rec.get("VLPR_Score__c"));
}

fn censusFailureDegrades() !void {
    _ = try t.createRecord("Circuit_Setting__c", .{ .Name = "census_url", .Value__c = census_url });
    const census = try t.mockCallout(.{ .url = "https://census.example/*", .responses = .{
        .{ .status = 503, .body = "unavailable" },
    } });
    const id = try t.createRecord("Contact", priya);
    try t.expectEqual("census calls", 1, try census.calls());
    const contact = try t.getRecord("Contact", "VLPR_Score__c, VLPR_Grade__c", id);
    try t.expectEqual("VLPR_Score__c without census", 86, contact.get("VLPR_Score__c"));
    try t.expectEqual("VLPR_Grade__c", "A", contact.get("VLPR_Grade__c"));
}

fn lowIntentLeadIsGradeD() !void {
    const id = try t.createRecord("Contact", .{ .LastName = "Okafor", .Email = "j.okafor@yahoo.com", .Website_Visits__c = 1 });
    const contact = try t.getRecord("Contact", "VLPR_Score__c, VLPR_Grade__c, Next_Action__c", id);
    try t.expectEqual("VLPR_Score__c", 5, contact.get("VLPR_Score__c"));
    try t.expectEqual("VLPR_Grade__c", "D", contact.get("VLPR_Grade__c"));
    try t.expectEqual("Next_Action__c", "Monitor", contact.get("Next_Action__c"));
    const tasks = try circuit.records.query("SELECT COUNT() FROM Task", .{});
    try t.expectEqual("tasks for a grade-D lead", 0, tasks.total_size);
}

fn messyNumbers() !void {
    // A float size (12.9 -> 12: 4 points), a negative visit count (0), a fractional open count (1.7 -> 1).
    const contact = try circuit.decode(try circuit.encode(.{
        .Title = "Software Engineer",
        .Company_Size__c = 12.9,
        .Website_Visits__c = -2,
        .Emails_Opened__c = 1.7,
        .Called_Business__c = true,
        .LeadSource = "Partner",
    }));
    try t.expectEqual("score", 5 + 0 + 4 + 0 + 2 + 10 + 2, script.score(contact, .nil));
}

fn emptyContactScoresZero() !void {
    try t.expectEqual("score of {}", 0, script.score(try circuit.decode(try circuit.encode(.{})), .nil));
}

fn gradeABatchEnqueuesOneJob() !void {
    _ = try t.createRecords("Contact", .{ .count = 3, .fields = priya });
    try t.expectEqual("enrichment jobs for 3 grade-A contacts", 1, try t.used("async_jobs"));
    _ = try t.createRecord("Contact", .{ .LastName = "Okafor", .Email = "j.okafor@yahoo.com" });
    try t.expectEqual("no job for a grade-D contact", 1, try t.used("async_jobs"));
}

fn enrichmentJobStoresIncome() !void {
    const census = try mockCensus(149_800);
    const id = try t.createRecord("Contact", priya);
    const ids = [_][]const u8{id};
    const event = try circuit.decode(try circuit.encode(.{ .kind = "job", .payload = .{ .contact_ids = &ids }, .depth = 1 }));
    var job = circuit.AsyncContext.fromEvent(circuit.allocator, event) orelse return circuit.fail("not a job event", .{});
    _ = try script.handleJob(&job);
    const contact = try t.getRecord("Contact", "Household_Income__c", id);
    try t.expectEqual("Household_Income__c", 149_800, contact.get("Household_Income__c"));
    try t.expectEqual("census calls: the trigger's and the job's", 2, try census.calls());
}

fn scheduleEnqueuesEnrichment() !void {
    _ = try t.createRecords("Contact", .{ .count = 2, .fields = priya });
    const before = try t.used("async_jobs");
    const event = try circuit.decode(try circuit.encode(.{ .kind = "schedule", .schedule = "nightly", .tick = "2026-01-01T02:00:00+00:00" }));
    var tick = circuit.AsyncContext.fromEvent(circuit.allocator, event) orelse return circuit.fail("not a schedule event", .{});
    const out = try circuit.decode((try script.handleSchedule(&tick)).msgpack);
    try t.expectEqual("grade-A contacts to enrich", 2, out.get("to_enrich"));
    try t.expectEqual("one more enrichment job", before + 1, try t.used("async_jobs"));
}
