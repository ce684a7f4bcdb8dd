//! Circuit tests for Zig (world `circuit-test`, abi/circuit-test.wit): register tests, mock
//! callouts, create test records, reset the governor with startTest/stopTest, and assert with
//! expected-vs-actual messages. A test file declares its tests in order:
//!
//!     pub const tests = .{ .high_intent_scores_a = highIntentScoresA, ... };
//!
//! where each test is `fn () !void`. Returning an error fails the test with its message.

const std = @import("std");
const circuit = @import("circuit");
const Value = circuit.Value;

/// `result<list<u8>, string>` and `list<u8>` return areas, as in the SDK's abi.zig.
const ResultArea = extern struct { tag: u8, ptr: usize, len: usize };

const imports = struct {
    extern "circuit:script/testing@1.0.0" fn @"mock-callout"(spec_ptr: usize, spec_len: usize, ret: *ResultArea) void;
    extern "circuit:script/testing@1.0.0" fn @"mock-calls"(id_ptr: usize, id_len: usize, ret: *ResultArea) void;
    extern "circuit:script/testing@1.0.0" fn @"create-records"(obj_ptr: usize, obj_len: usize, tpl_ptr: usize, tpl_len: usize, ret: *ResultArea) void;
    extern "circuit:script/testing@1.0.0" fn @"start-test"() void;
    extern "circuit:script/testing@1.0.0" fn @"stop-test"() void;
    extern "circuit:script/testing@1.0.0" fn fail(msg_ptr: usize, msg_len: usize) void;
};

pub const TestError = error{ TestFailed, OutOfMemory };

fn addr(s: []const u8) usize {
    return if (s.len == 0) 0 else @intFromPtr(s.ptr);
}

fn bytesAt(ptr: usize, len: usize) []const u8 {
    if (len == 0) return &.{};
    return @as([*]const u8, @ptrFromInt(ptr))[0..len];
}

/// The ok value decoded, or the host's err message as a failed test.
fn reply(area: ResultArea, comptime what: []const u8) TestError!Value {
    const bytes = bytesAt(area.ptr, area.len);
    if (area.tag != 0) return failWith("{s}: {s}", .{ what, bytes });
    return circuit.decode(bytes) catch |e| switch (e) {
        error.OutOfMemory => error.OutOfMemory,
        else => @panic("malformed msgpack in the host's " ++ what ++ " reply"),
    };
}

// -- mocks ---------------------------------------------------------------------------------------

/// A registered callout mock (Test.setMock): ask it how often it was called.
pub const Mock = struct {
    id: i64,

    /// The number of callouts this mock answered so far.
    pub fn calls(self: Mock) TestError!i64 {
        return (try self.report()).get("calls").asInt() orelse 0;
    }

    /// The requests it answered: `[{"method", "url", "headers", "body"}...]`.
    pub fn requests(self: Mock) TestError![]Value {
        return (try self.report()).get("requests").items();
    }

    fn report(self: Mock) TestError!Value {
        const id = try circuit.encode(self.id);
        var area: ResultArea = undefined;
        imports.@"mock-calls"(addr(id), id.len, &area);
        return reply(area, "mock-calls");
    }
};

/// Registers a callout mock: `.{ .method = "POST", .url = "https://census.example/*",
/// .response = .{ .status = 200, .body = body } }`, or `.responses = .{ r1, r2 }` answered in
/// turn (the last repeats). `url` is a glob; `method` may be left out (any). A body is a str or
/// `circuit.Bytes` (see `msgpackBody`). The most recent matching mock answers; a callout no
/// mock matches fails the test.
pub fn mockCallout(spec: anytype) TestError!Mock {
    const bytes = try circuit.encode(spec);
    var area: ResultArea = undefined;
    imports.@"mock-callout"(addr(bytes), bytes.len, &area);
    const id = try reply(area, "mock-callout");
    return .{ .id = id.asInt() orelse 0 };
}

/// A response body holding `value` as msgpack.
pub fn msgpackBody(value: anytype) error{OutOfMemory}!circuit.Bytes {
    return .{ .data = try circuit.encode(value) };
}

// -- test data -----------------------------------------------------------------------------------

/// Inserts test records of `object` (as DML: charged, and the object's triggers fire) and returns
/// their ids. `template` is `.{ .count = 200, .fields = .{ .LastName = "Lead {n}" } }`: "{n}" in a
/// string becomes the row's index; required fields left out get defaults for their type.
pub fn createRecords(object: []const u8, template: anytype) TestError![]const []const u8 {
    const bytes = try circuit.encode(template);
    var area: ResultArea = undefined;
    imports.@"create-records"(addr(object), object.len, addr(bytes), bytes.len, &area);
    const values = (try reply(area, "create-records")).items();
    const ids = try circuit.allocator.alloc([]const u8, values.len);
    for (ids, values) |*id, v| id.* = v.asStr() orelse "";
    return ids;
}

/// One test record of `object` with `fields` (and defaults for the other required fields).
pub fn createRecord(object: []const u8, fields: anytype) TestError![]const u8 {
    return (try createRecords(object, .{ .count = 1, .fields = fields }))[0];
}

/// The record `id` of `object` with `fields` (a comma-separated SELECT list), or a failed test.
pub fn getRecord(object: []const u8, fields: []const u8, id: []const u8) TestError!circuit.Record {
    const soql = try std.fmt.allocPrint(circuit.allocator, "SELECT {s} FROM {s} WHERE Id = :id", .{ fields, object });
    const result = circuit.records.query(soql, .{ .id = id }) catch |e| switch (e) {
        error.OutOfMemory => return error.OutOfMemory,
        else => return failWith("query {s}: {s}", .{ soql, circuit.lastError() }),
    };
    if (result.records.len == 0) return failWith("no {s} with Id {s}", .{ object, id });
    return result.records[0];
}

// -- governor ------------------------------------------------------------------------------------

/// Test.startTest: the code until `stopTest` runs with fresh governor counters.
pub fn startTest() void {
    imports.@"start-test"();
}

/// Test.stopTest: the counters from before `startTest` are back.
pub fn stopTest() void {
    imports.@"stop-test"();
}

/// How much of governor `resource` ("callouts", "queries", ...) is used now.
pub fn used(resource: []const u8) TestError!i64 {
    const usage = try circuit.limits.usage();
    return (usage.get(resource) orelse return failWith("no governor resource {s}", .{resource})).used;
}

// -- failing and assertions ----------------------------------------------------------------------

/// Ends the test now as failed with a formatted message; nothing can catch it.
pub fn fail(comptime fmt: []const u8, args: anytype) noreturn {
    const message = std.fmt.allocPrint(circuit.allocator, fmt, args) catch fmt;
    imports.fail(addr(message), message.len);
    unreachable; // the host never returns from fail
}

/// `error.TestFailed` with a formatted message (returned, so `try` ends the test).
pub fn failWith(comptime fmt: []const u8, args: anytype) error{TestFailed} {
    last_failure = std.fmt.allocPrint(circuit.allocator, fmt, args) catch fmt;
    return error.TestFailed;
}

var last_failure: []const u8 = "";

/// `label: expected true`.
pub fn expect(label: []const u8, ok: bool) error{TestFailed}!void {
    if (!ok) return failWith("{s}: expected true, got false", .{label});
}

/// `label: expected <expected>, got <actual>`. `actual` may be a `circuit.Value` (a record field):
/// it is compared as the type of `expected` (str, int, float, bool, or null for nil).
pub fn expectEqual(label: []const u8, expected: anytype, actual: anytype) error{TestFailed}!void {
    if (equal(expected, actual)) return;
    return failWith("{s}: expected {f}, got {f}", .{ label, show(expected), show(actual) });
}

/// `label: expected at least <min>, got <actual>` (numbers or `circuit.Value` numbers).
pub fn expectAtLeast(label: []const u8, min: anytype, actual: anytype) error{TestFailed}!void {
    const a = number(actual) orelse return failWith("{s}: expected a number >= {f}, got {f}", .{ label, show(min), show(actual) });
    if (a < number(min).?) return failWith("{s}: expected at least {f}, got {f}", .{ label, show(min), show(actual) });
}

/// `label: expected less than <bound>, got <actual>`.
pub fn expectLessThan(label: []const u8, bound: anytype, actual: anytype) error{TestFailed}!void {
    const a = number(actual) orelse return failWith("{s}: expected a number < {f}, got {f}", .{ label, show(bound), show(actual) });
    if (a >= number(bound).?) return failWith("{s}: expected less than {f}, got {f}", .{ label, show(bound), show(actual) });
}

/// `label: expected "<haystack>" to contain "<needle>"`.
pub fn expectContains(label: []const u8, haystack: anytype, needle: []const u8) error{TestFailed}!void {
    const text: []const u8 = asText(haystack) orelse "";
    if (std.mem.find(u8, text, needle) == null)
        return failWith("{s}: expected \"{s}\" to contain \"{s}\"", .{ label, text, needle });
}

fn isText(comptime T: type) bool {
    return switch (@typeInfo(T)) {
        .pointer => |p| switch (p.size) {
            .slice => p.child == u8,
            .one => switch (@typeInfo(p.child)) {
                .array => |a| a.child == u8,
                else => false,
            },
            else => false,
        },
        else => false,
    };
}

fn asText(x: anytype) ?[]const u8 {
    const T = @TypeOf(x);
    if (T == Value) return x.asStr();
    if (comptime isText(T)) return x;
    return null;
}

fn number(x: anytype) ?f64 {
    const T = @TypeOf(x);
    if (T == Value) return x.asFloat();
    return switch (@typeInfo(T)) {
        .int, .comptime_int => @floatFromInt(x),
        .float, .comptime_float => @floatCast(x),
        else => null,
    };
}

fn equal(expected: anytype, actual: anytype) bool {
    const E = @TypeOf(expected);
    if (E == @TypeOf(null)) return switch (@TypeOf(actual)) {
        Value => actual.isNil(),
        else => if (@typeInfo(@TypeOf(actual)) == .optional) actual == null else false,
    };
    if (comptime isText(E)) {
        const a = asText(actual) orelse return false;
        return std.mem.eql(u8, expected, a);
    }
    if (E == bool) {
        const a: ?bool = if (@TypeOf(actual) == Value) actual.asBool() else actual;
        return a == expected;
    }
    switch (@typeInfo(E)) {
        .int, .comptime_int, .float, .comptime_float => {
            if (@TypeOf(actual) == Value and actual != .int and actual != .uint and actual != .float) return false;
            const a = number(actual) orelse return false;
            return a == number(expected).?;
        },
        else => return std.meta.eql(expected, actual),
    }
}

/// Formats a value for a failure message: strings quoted, `Value`s by kind, others with {any}.
fn show(x: anytype) Shown(@TypeOf(x)) {
    return .{ .x = x };
}

fn Shown(comptime T: type) type {
    return struct {
        x: T,
        pub fn format(self: @This(), w: *std.Io.Writer) std.Io.Writer.Error!void {
            if (T == Value) return showValue(self.x, w);
            if (comptime isText(T)) return w.print("\"{s}\"", .{self.x});
            if (T == @TypeOf(null)) return w.writeAll("null");
            return w.print("{any}", .{self.x});
        }
    };
}

fn showValue(v: Value, w: *std.Io.Writer) std.Io.Writer.Error!void {
    switch (v) {
        .nil => try w.writeAll("nil"),
        .bool => |b| try w.print("{}", .{b}),
        .int => |i| try w.print("{d}", .{i}),
        .uint => |u| try w.print("{d}", .{u}),
        .float => |f| try w.print("{d}", .{f}),
        .str => |s| try w.print("\"{s}\"", .{s}),
        .bin => |b| try w.print("<{d} bytes>", .{b.len}),
        .array => |a| try w.print("<array of {d}>", .{a.len}),
        .map => |m| try w.print("<map of {d}>", .{m.len}),
    }
}

// -- exports -------------------------------------------------------------------------------------

/// Exports `list-tests` and `run-test` for the module's `pub const tests = .{ .name = fn, ... }`.
/// The test entry point (test_entry.zig) calls it; authors do not.
pub fn exportTests(comptime script: type) void {
    if (!@hasDecl(script, "tests"))
        @compileError("a tests.zig must declare `pub const tests = .{ .name = testFn, ... }`");
    const names = comptime std.meta.fieldNames(@TypeOf(script.tests));
    const glue = struct {
        var list_area: extern struct { ptr: usize, len: usize } = undefined;
        var run_area: ResultArea = undefined;

        fn listTests() callconv(.c) *@TypeOf(list_area) {
            const bytes = circuit.encode(names) catch @panic("out of memory listing tests");
            list_area = .{ .ptr = addr(bytes), .len = bytes.len };
            return &list_area;
        }

        fn runTest(name_ptr: usize, name_len: usize) callconv(.c) *ResultArea {
            const wanted = bytesAt(name_ptr, name_len);
            const message: ?[]const u8 = inline for (names) |name| {
                if (std.mem.eql(u8, name, wanted)) break run(@field(script.tests, name));
            } else std.fmt.allocPrint(circuit.allocator, "no test named {s}", .{wanted}) catch "no such test";
            run_area = .{ .tag = if (message == null) 0 else 1, .ptr = 0, .len = 0 };
            if (message) |m| {
                run_area.ptr = addr(m);
                run_area.len = m.len;
            }
            return &run_area;
        }

        /// Nothing to free: every test runs in a fresh instance.
        fn post(_: usize) callconv(.c) void {}
    };
    @export(&glue.listTests, .{ .name = "list-tests" });
    @export(&glue.post, .{ .name = "cabi_post_list-tests" });
    @export(&glue.runTest, .{ .name = "run-test" });
    @export(&glue.post, .{ .name = "cabi_post_run-test" });
}

/// null when the test passed, else its failure message.
fn run(comptime test_fn: anytype) ?[]const u8 {
    last_failure = "";
    test_fn() catch |e| {
        if (e == error.TestFailed) return last_failure;
        if (e == error.Failed) return circuit.lastError();
        const detail = circuit.lastError();
        if (detail.len == 0) return @errorName(e);
        return std.fmt.allocPrint(circuit.allocator, "{s}: {s}", .{ @errorName(e), detail }) catch @errorName(e);
    };
    return null;
}
