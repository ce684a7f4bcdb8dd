//! `circuit:script/records`: SOQL queries and DML statements (each one all-or-none).

const abi = @import("abi.zig");
const arena = @import("arena.zig");
const host = @import("host.zig");
const Value = @import("msgpack.zig").Value;

pub const QueryError = error{ QueryFailed, OutOfMemory };
pub const DmlError = error{ DmlFailed, OutOfMemory };

pub const QueryResult = struct {
    /// Each record is a map of field name to scalar; read fields with `rec.get("Name").asStr()`.
    records: []Value,
    /// The number of matching rows (for `SELECT COUNT() ...` the only answer; records is empty).
    total_size: i64,
};

/// Runs `soql`. `binds` fills `:name` placeholders: a struct such as `.{ .ids = ids, .min = 50 }`
/// (values are scalars or slices of scalars), or `.{}` / `null` for none.
/// On `error.QueryFailed`, `circuit.lastError()` says why (syntax position, unknown field...).
pub fn query(soql: []const u8, binds: anytype) QueryError!QueryResult {
    const bind_bytes: []const u8 = if (noBinds(@TypeOf(binds))) &.{} else try host.encode(binds);
    const reply = try host.result(abi.query(soql, bind_bytes), error.QueryFailed, "query");
    return .{
        .records = host.field(reply, "records", "query").items(),
        .total_size = host.field(reply, "total_size", "query").asInt() orelse 0,
    };
}

fn noBinds(comptime T: type) bool {
    return switch (@typeInfo(T)) {
        .null => true,
        .@"struct" => |info| info.field_names.len == 0,
        else => false,
    };
}

pub const DmlResult = struct {
    /// One id per row, in row order (the new ids for inserts).
    ids: []const []const u8,
    /// Per row: whether the statement created the record (insert, or upsert without a match).
    created: []const bool,
};

/// Inserts `rows` (a slice of structs or of record `Value`s) into `object`; rows carry no Id.
pub fn insert(object: []const u8, rows: anytype) DmlError!DmlResult {
    return dml(.insert, object, rows);
}

/// Updates by Id: each row carries `Id` and the fields to change.
pub fn update(object: []const u8, rows: anytype) DmlError!DmlResult {
    return dml(.update, object, rows);
}

/// Inserts or updates, matching rows on `external_id` (null: on Id).
pub fn upsert(object: []const u8, rows: anytype, external_id: ?[]const u8) DmlError!DmlResult {
    if (external_id) |key| return dml(.upsert, object, .{ .rows = rows, .external_id = key });
    return dml(.upsert, object, rows);
}

/// Moves the rows (only their Id is read) to the recycle bin.
pub fn delete(object: []const u8, rows: anytype) DmlError!DmlResult {
    return dml(.delete, object, rows);
}

/// Restores deleted rows (by Id) from the recycle bin.
pub fn undelete(object: []const u8, rows: anytype) DmlError!DmlResult {
    return dml(.undelete, object, rows);
}

fn dml(op: abi.DmlOp, object: []const u8, rows: anytype) DmlError!DmlResult {
    const reply = try host.result(abi.dml(op, object, try host.encode(rows)), error.DmlFailed, "dml");
    const id_values = host.field(reply, "ids", "dml").items();
    const created_values = host.field(reply, "created", "dml").items();
    const ids = try arena.allocator.alloc([]const u8, id_values.len);
    const created = try arena.allocator.alloc(bool, created_values.len);
    for (ids, id_values) |*id, v| id.* = v.asStr() orelse "";
    for (created, created_values) |*c, v| c.* = v.asBool() orelse false;
    return .{ .ids = ids, .created = created };
}
