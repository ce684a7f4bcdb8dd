//! Virtual LPR: scores new Contacts on fit, intent and timing (0..100), grades them, stores the
//! result on the Contact and opens a High-priority Task for every grade-A lead. It also enqueues one
//! enrichment job (a queueable, ABI 1.1.0) for the batch's grade-A leads: `handleJob` later stores
//! each one's census household income, in its own execution, under the asynchronous limits.
//! The rules are the "Virtual LPR scoring" spec of the Circuit Script ABI contract; the native
//! Python benchmark implements the same spec and must produce the same writes.

const std = @import("std");
const circuit = @import("circuit");
const Record = circuit.Record;

const grade_a_threshold = 70;

/// Household income per postal code, from the census callout (empty when unavailable).
const Census = circuit.Value;

pub fn handle(ctx: *circuit.Context) !circuit.Output {
    if (!std.mem.eql(u8, ctx.object, "Contact") or ctx.operation != .after_insert)
        return circuit.fail("virtual_lpr runs on Contact after_insert, not {s} {t}", .{ ctx.object, ctx.operation });

    const census = try enrich(ctx.allocator, ctx.new);

    const Score = struct { Id: []const u8, VLPR_Score__c: i64, VLPR_Grade__c: []const u8, Next_Action__c: []const u8 };
    const scores = try ctx.allocator.alloc(Score, ctx.new.len);
    var grade_a: usize = 0;
    for (ctx.new, scores) |contact, *s| {
        const total = score(contact, census);
        const g = grade(total);
        s.* = .{
            .Id = contact.get("Id").asStr() orelse "",
            .VLPR_Score__c = total,
            .VLPR_Grade__c = g.letter,
            .Next_Action__c = g.next_action,
        };
        if (total >= grade_a_threshold) grade_a += 1;
    }
    if (scores.len > 0) _ = try circuit.records.update("Contact", scores);

    if (grade_a > 0) {
        const Task = struct { Subject: []const u8, Priority: []const u8, Status: []const u8, WhoId: []const u8, Description: []const u8 };
        const tasks = try ctx.allocator.alloc(Task, grade_a);
        var i: usize = 0;
        for (ctx.new, scores) |contact, s| {
            if (s.VLPR_Score__c < grade_a_threshold) continue;
            tasks[i] = .{
                .Subject = try subject(ctx.allocator, contact, s.VLPR_Score__c),
                .Priority = "High",
                .Status = "Not Started",
                .WhoId = s.Id,
                .Description = try std.fmt.allocPrint(ctx.allocator, "Virtual LPR grade A, score {d}", .{s.VLPR_Score__c}),
            };
            i += 1;
        }
        _ = try circuit.records.insert("Task", tasks);
        const ids = try ctx.allocator.alloc([]const u8, grade_a);
        for (tasks, ids) |task, *id| id.* = task.WhoId;
        // Enqueued only if this execution commits; a failure to enqueue must not lose the scores.
        _ = circuit.jobs.enqueue("virtual_lpr", .{ .contact_ids = ids }) catch |e| switch (e) {
            error.Failed => circuit.log.warn("enrichment job not enqueued: {s}", .{circuit.lastError()}),
            else => return e,
        };
    }

    circuit.log.info("scored {d} contacts, {d} grade A", .{ scores.len, grade_a });
    return circuit.output(.{ .scored = scores.len, .grade_a = grade_a });
}

/// A schedule's tick (e.g. nightly): enqueue enrichment for up to 200 grade-A contacts not enriched yet
/// (their job was lost, or they were graded before enrichment existed).
pub fn handleSchedule(ctx: *circuit.AsyncContext) !circuit.Output {
    const missing = try circuit.records.query(
        "SELECT Id FROM Contact WHERE VLPR_Grade__c = 'A' AND Household_Income__c = null ORDER BY Id LIMIT 200",
        .{},
    );
    const ids = try ctx.allocator.alloc([]const u8, missing.records.len);
    for (missing.records, ids) |contact, *id| id.* = contact.get("Id").asStr() orelse "";
    if (ids.len > 0) _ = try circuit.jobs.enqueue("virtual_lpr", .{ .contact_ids = ids });
    circuit.log.info("{d} grade-A contacts to enrich", .{ids.len});
    return circuit.output(.{ .to_enrich = ids.len });
}

/// The enrichment job: the census household income of the grade-A contacts a scoring run named.
pub fn handleJob(ctx: *circuit.AsyncContext) !circuit.Output {
    const named = ctx.payload.get("contact_ids").items();
    const ids = try ctx.allocator.alloc([]const u8, named.len);
    for (named, ids) |value, *id| id.* = value.asStr() orelse "";
    const found = try circuit.records.query("SELECT Id, MailingPostalCode FROM Contact WHERE Id IN :ids", .{ .ids = ids });
    const census = try enrich(ctx.allocator, found.records);
    const Income = struct { Id: []const u8, Household_Income__c: i64 };
    const incomes = try ctx.allocator.alloc(Income, found.records.len);
    var n: usize = 0;
    for (found.records) |contact| {
        const zip = contact.get("MailingPostalCode").asStr() orelse continue;
        const income = census.get(zip).get("median_household_income").asInt() orelse continue;
        incomes[n] = .{ .Id = contact.get("Id").asStr() orelse "", .Household_Income__c = income };
        n += 1;
    }
    if (n > 0) _ = try circuit.records.update("Contact", incomes[0..n]);
    circuit.log.info("enriched {d} of {d} grade-A contacts", .{ n, found.records.len });
    return circuit.output(.{ .enriched = n });
}

/// One settings query and at most one callout for the whole batch. Every failure degrades to
/// "no enrichment" (a warning), because scoring without census data is still useful.
fn enrich(gpa: std.mem.Allocator, contacts: []const Record) !Census {
    const setting = circuit.records.query(
        "SELECT Value__c FROM Circuit_Setting__c WHERE Name = 'census_url' LIMIT 1",
        .{},
    ) catch |e| switch (e) {
        error.QueryFailed => {
            circuit.log.warn("census enrichment unavailable: {s}", .{circuit.lastError()});
            return .nil;
        },
        else => return e,
    };
    if (setting.records.len == 0) {
        circuit.log.info("census enrichment not configured", .{});
        return .nil;
    }
    const url = setting.records[0].get("Value__c").asStr() orelse "";

    const body = try circuit.encode(.{ .zips = try distinctZips(gpa, contacts) });
    const response = circuit.http.callout(.{
        .method = "POST",
        .url = url,
        .headers = &.{.{ .name = "content-type", .value = "application/msgpack" }},
        .body = body,
    }) catch |e| switch (e) {
        error.CalloutFailed => {
            circuit.log.warn("census enrichment failed: {s}", .{circuit.lastError()});
            return .nil;
        },
        else => return e,
    };
    if (response.status != 200) {
        circuit.log.warn("census enrichment failed: HTTP {d}", .{response.status});
        return .nil;
    }
    return circuit.decode(response.body) catch |e| switch (e) {
        error.OutOfMemory => return e,
        else => {
            circuit.log.warn("census enrichment failed: response body is not msgpack", .{});
            return .nil;
        },
    };
}

/// Distinct non-empty postal codes, in first-seen order.
fn distinctZips(gpa: std.mem.Allocator, contacts: []const Record) ![]const []const u8 {
    const zips = try gpa.alloc([]const u8, contacts.len);
    var n: usize = 0;
    outer: for (contacts) |contact| {
        const zip = contact.get("MailingPostalCode").asStr() orelse continue;
        if (zip.len == 0) continue;
        for (zips[0..n]) |seen| if (std.mem.eql(u8, seen, zip)) continue :outer;
        zips[n] = zip;
        n += 1;
    }
    return zips[0..n];
}

pub fn score(contact: Record, census: Census) i64 {
    return fit(contact) + intent(contact) + timing(contact, census);
}

/// Title + email domain + company size, max 40.
fn fit(c: Record) i64 {
    return titlePoints(c.get("Title").asStr() orelse "") + emailPoints(c.get("Email").asStr()) +
        sizePoints(count(c, "Company_Size__c"));
}

fn titlePoints(title: []const u8) i64 {
    const tiers = [_]struct { words: []const []const u8, points: i64 }{
        .{ .words = &.{ "chief", "ceo", "founder", "owner", "president" }, .points = 20 },
        .{ .words = &.{ "vp", "vice president", "director", "head" }, .points = 15 },
        .{ .words = &.{"manager"}, .points = 10 },
    };
    if (title.len == 0) return 0;
    for (tiers) |tier| {
        for (tier.words) |word| if (std.ascii.findIgnoreCase(title, word) != null) return tier.points;
    }
    return 5;
}

fn emailPoints(email: ?[]const u8) i64 {
    const free_mail = [_][]const u8{ "gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "aol.com", "icloud.com" };
    const address = email orelse return 0;
    const at = std.mem.findScalarLast(u8, address, '@') orelse return 0;
    const domain = address[at + 1 ..];
    for (free_mail) |free| if (std.ascii.eqlIgnoreCase(domain, free)) return 3;
    return 10;
}

fn sizePoints(size: i64) i64 {
    if (size >= 200) return 10;
    if (size >= 50) return 7;
    if (size >= 10) return 4;
    return 0;
}

/// Web visits, email opens, a call to the business; max 40.
fn intent(c: Record) i64 {
    const called: i64 = if (c.get("Called_Business__c").asBool() orelse false) 10 else 0;
    return 2 * @min(count(c, "Website_Visits__c"), 10) + 2 * @min(count(c, "Emails_Opened__c"), 5) + called;
}

/// Lead source + the postal code's household income; max 20.
fn timing(c: Record, census: Census) i64 {
    return sourcePoints(c.get("LeadSource").asStr() orelse "") + incomePoints(c, census);
}

fn sourcePoints(source: []const u8) i64 {
    const eql = std.mem.eql;
    if (source.len == 0) return 0;
    if (eql(u8, source, "Referral")) return 10;
    if (eql(u8, source, "Web") or eql(u8, source, "Website")) return 7;
    if (eql(u8, source, "Event") or eql(u8, source, "Trade Show")) return 5;
    return 2;
}

fn incomePoints(c: Record, census: Census) i64 {
    const zip = c.get("MailingPostalCode").asStr() orelse return 0;
    const known = census.get(zip).get("median_household_income");
    if (known.isNil()) return 0;
    const income = @max(known.asInt() orelse 0, 0); // a non-number is known but counts as 0
    if (income >= 100_000) return 10;
    if (income >= 60_000) return 6;
    return 2;
}

/// A numeric field as a count: int or float, truncated toward zero; missing or negative is 0.
fn count(c: Record, field: []const u8) i64 {
    return @max(c.get(field).asInt() orelse 0, 0);
}

const Grade = struct { letter: []const u8, next_action: []const u8 };

fn grade(total: i64) Grade {
    if (total >= 70) return .{ .letter = "A", .next_action = "Call within 1 hour" };
    if (total >= 50) return .{ .letter = "B", .next_action = "Call today" };
    if (total >= 30) return .{ .letter = "C", .next_action = "Add to nurture sequence" };
    return .{ .letter = "D", .next_action = "Monitor" };
}

/// "CRITICAL: call <FirstName> <LastName> (VLPR <score>)", leaving out missing names.
fn subject(gpa: std.mem.Allocator, c: Record, total: i64) ![]const u8 {
    const first = c.get("FirstName").asStr() orelse "";
    const last = c.get("LastName").asStr() orelse "";
    return std.fmt.allocPrint(gpa, "CRITICAL: call {s}{s}{s}{s}(VLPR {d})", .{
        first, if (first.len > 0) " " else "", last, if (last.len > 0) " " else "", total,
    });
}
