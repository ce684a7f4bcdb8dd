//! The shared msgpack vectors (abi/vectors/msgpack.json) against the Zig codec: every vector's
//! bytes must decode to its JSON form and re-encode byte for byte, so guest and host agree.
//!
//! Needs a module named "vectors" exposing `pub const json: []const u8` (the file's contents);
//! tests/guest_sdk/test_msgpack.py generates it and runs:
//!   python -m ziglang test --dep msgpack --dep vectors -Mroot=msgpack_vectors_test.zig \
//!       -Mmsgpack=msgpack.zig -Mvectors=<generated vectors.zig>

const std = @import("std");
const msgpack = @import("msgpack");
const vectors = @import("vectors");
const Json = std.json.Value;

test "every shared vector decodes to its JSON form and re-encodes identically" {
    var arena = std.heap.ArenaAllocator.init(std.testing.allocator);
    defer arena.deinit();
    const a = arena.allocator();
    const all = try std.json.parseFromSliceLeaky(Json, a, vectors.json, .{});
    try std.testing.expect(all.array.items.len > 0);
    for (all.array.items) |vector| {
        const name = vector.object.get("name").?.string;
        const hex = vector.object.get("hex").?.string;
        const bytes = try a.alloc(u8, hex.len / 2);
        _ = try std.fmt.hexToBytes(bytes, hex);
        const value = msgpack.decode(a, bytes) catch |err| {
            std.debug.print("vector {s}: decode failed: {t}\n", .{ name, err });
            return err;
        };
        if (!try matches(a, value, vector.object.get("value").?)) {
            std.debug.print("vector {s}: decoded value differs from its JSON form\n", .{name});
            return error.TestUnexpectedResult;
        }
        const again = try msgpack.encode(a, value);
        if (!std.mem.eql(u8, bytes, again)) {
            std.debug.print("vector {s}: re-encoded bytes differ\n", .{name});
            return error.TestUnexpectedResult;
        }
    }
}

/// JSON form (abi/vectors/generate.py): bin is {"$bin": hex}, integral floats {"$float": x}.
fn matches(a: std.mem.Allocator, v: msgpack.Value, j: Json) !bool {
    switch (v) {
        .nil => return j == .null,
        .bool => |b| return j == .bool and j.bool == b,
        .int => |i| return j == .integer and j.integer == i,
        .uint => |u| return j == .number_string and
            u == try std.fmt.parseInt(u64, j.number_string, 10),
        .float => |f| {
            if (j == .float) return j.float == f;
            const wrapped = if (j == .object) j.object.get("$float") else null;
            const x = wrapped orelse return false;
            return switch (x) {
                .float => x.float == f,
                .integer => @as(f64, @floatFromInt(x.integer)) == f,
                else => false,
            };
        },
        .str => |s| return j == .string and std.mem.eql(u8, j.string, s),
        .bin => |s| {
            const hex = (if (j == .object) j.object.get("$bin") else null) orelse return false;
            const want = try a.alloc(u8, hex.string.len / 2);
            return std.mem.eql(u8, try std.fmt.hexToBytes(want, hex.string), s);
        },
        .array => |items| {
            if (j != .array or j.array.items.len != items.len) return false;
            for (items, j.array.items) |item, ji| if (!try matches(a, item, ji)) return false;
            return true;
        },
        .map => |entries| {
            if (j != .object or j.object.count() != entries.len) return false;
            // JSON objects keep insertion order, so order is checked too.
            for (entries, j.object.keys(), j.object.values()) |e, k, jv| {
                if (e.key != .str or !std.mem.eql(u8, e.key.str, k)) return false;
                if (!try matches(a, e.value, jv)) return false;
            }
            return true;
        },
    }
}
