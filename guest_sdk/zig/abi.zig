//! The canonical-ABI lowering of abi/circuit.wit (and 1.1.0's jobs), and nothing else: the imports, the
//! return areas, and `cabi_realloc`. The only file that turns pointers into slices; everything
//! above it works with `[]const u8` and msgpack values.

const std = @import("std");
const arena = @import("arena.zig");

/// `result<list<u8>, string>` as the canonical ABI lays it out: 12 bytes, align 4.
pub const ResultArea = extern struct {
    tag: u8, // 0 ok, 1 err
    ptr: usize,
    len: usize,
};

/// `list<u8>`: 8 bytes, align 4.
pub const ListArea = extern struct {
    ptr: usize,
    len: usize,
};

comptime {
    std.debug.assert(@sizeOf(ResultArea) == 12 and @offsetOf(ResultArea, "ptr") == 4);
    std.debug.assert(@sizeOf(ListArea) == 8);
}

pub const DmlOp = enum(u32) { insert = 0, update = 1, upsert = 2, delete = 3, undelete = 4 };
pub const Level = enum(u32) { debug = 0, info = 1, warn = 2, err = 3 };

const imports = struct {
    extern "circuit:script/records@1.0.0" fn query(soql_ptr: usize, soql_len: usize, binds_ptr: usize, binds_len: usize, ret: *ResultArea) void;
    extern "circuit:script/records@1.0.0" fn dml(op: u32, obj_ptr: usize, obj_len: usize, rows_ptr: usize, rows_len: usize, ret: *ResultArea) void;
    extern "circuit:script/http@1.0.0" fn callout(req_ptr: usize, req_len: usize, ret: *ResultArea) void;
    extern "circuit:script/log@1.0.0" fn write(level: u32, msg_ptr: usize, msg_len: usize) void;
    extern "circuit:script/limits@1.0.0" fn usage(ret: *ListArea) void;
    // ABI 1.1.0 (abi/circuit-1.1.wit). Zig emits an import only for a function a circuit calls,
    // so a circuit that never enqueues stays a module of the 1.0.0 world.
    extern "circuit:script/jobs@1.1.0" fn enqueue(circuit_ptr: usize, circuit_len: usize, payload_ptr: usize, payload_len: usize, ret: *ResultArea) void;
};

/// What a fallible import answered: msgpack bytes, or the host's error message.
pub const Reply = union(enum) { ok: []const u8, err: []const u8 };

/// The pointer half of a slice. Empty slices pass 0: Zig may leave their pointer
/// dangling, and the host bounds-checks pointers even for zero lengths.
fn addr(s: []const u8) usize {
    return if (s.len == 0) 0 else @intFromPtr(s.ptr);
}

fn bytesAt(ptr: usize, len: usize) []const u8 {
    if (len == 0) return &.{};
    return @as([*]const u8, @ptrFromInt(ptr))[0..len];
}

fn reply(area: ResultArea) Reply {
    const bytes = bytesAt(area.ptr, area.len);
    return if (area.tag == 0) .{ .ok = bytes } else .{ .err = bytes };
}

pub fn query(soql: []const u8, binds: []const u8) Reply {
    var area: ResultArea = undefined;
    imports.query(addr(soql), soql.len, addr(binds), binds.len, &area);
    return reply(area);
}

pub fn dml(op: DmlOp, object: []const u8, rows: []const u8) Reply {
    var area: ResultArea = undefined;
    imports.dml(@backingInt(op), addr(object), object.len, addr(rows), rows.len, &area);
    return reply(area);
}

pub fn callout(request: []const u8) Reply {
    var area: ResultArea = undefined;
    imports.callout(addr(request), request.len, &area);
    return reply(area);
}

/// `result<string, string>` has the same area as `result<list<u8>, string>`; ok is UTF-8 text.
pub fn enqueue(circuit: []const u8, payload: []const u8) Reply {
    var area: ResultArea = undefined;
    imports.enqueue(addr(circuit), circuit.len, addr(payload), payload.len, &area);
    return reply(area);
}

pub fn write(level: Level, message: []const u8) void {
    imports.write(@backingInt(level), addr(message), message.len);
}

pub fn usage() []const u8 {
    var area: ListArea = undefined;
    imports.usage(&area);
    return bytesAt(area.ptr, area.len);
}

/// The host allocates every buffer it hands us (the event, import replies) through this.
/// Failure has no ABI answer, so it traps (the host reports it as a guest fault).
fn cabi_realloc(old_ptr: usize, old_size: usize, alignment: usize, new_size: usize) callconv(.c) usize {
    const align_ok = alignment != 0 and std.math.isPowerOfTwo(alignment);
    if (!align_ok) @trap();
    const new = arena.allocBytes(new_size, alignment) orelse @trap();
    if (old_ptr != 0) {
        const keep = @min(old_size, new_size);
        @memcpy(new[0..keep], @as([*]const u8, @ptrFromInt(old_ptr))[0..keep]);
    }
    return @intFromPtr(new);
}

comptime {
    @export(&cabi_realloc, .{ .name = "cabi_realloc" });
}

/// Exports `handle` and `cabi_post_handle` around `run`, which maps the event's msgpack bytes
/// to the call's result. The return area is static: the host reads it before the next call.
pub fn exportHandle(comptime run: fn (event: []const u8) Reply) void {
    const glue = struct {
        var area: ResultArea = undefined;

        fn handle(event_ptr: usize, event_len: usize) callconv(.c) *ResultArea {
            const bytes = switch (run(bytesAt(event_ptr, event_len))) {
                .ok => |b| blk: {
                    area.tag = 0;
                    break :blk b;
                },
                .err => |m| blk: {
                    area.tag = 1;
                    break :blk m;
                },
            };
            area.ptr = addr(bytes);
            area.len = bytes.len;
            return &area;
        }

        /// The host has copied the result out: everything of this call can go.
        fn postHandle(_: *ResultArea) callconv(.c) void {
            arena.reset();
        }
    };
    @export(&glue.handle, .{ .name = "handle" });
    @export(&glue.postHandle, .{ .name = "cabi_post_handle" });
}
