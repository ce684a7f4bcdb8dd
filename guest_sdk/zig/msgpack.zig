//! msgpack for the Circuit Script ABI: a `Value` tree, a decoder and an encoder.
//!
//! Every byte the guest sends must equal what the host's `msgpack.packb(v, use_bin_type=True)`
//! would produce for the same value, so the encoder always picks the smallest encoding of ints,
//! lengths and headers, writes floats as float64, text as str and bytes as bin. The decoder
//! also accepts the wider forms (and float32) that a conforming peer might send.
//! Decoded strings and bins are slices of the input buffer (no copies): keep the input alive.

const std = @import("std");
const Allocator = std.mem.Allocator;

/// A decoded msgpack value. Maps keep their order and may hold any key (the ABI uses str keys).
pub const Value = union(enum) {
    nil,
    bool: bool,
    /// Every int that fits in i64; `uint` holds only the ones above maxInt(i64).
    int: i64,
    uint: u64,
    float: f64,
    str: []const u8,
    bin: []const u8,
    array: []Value,
    map: []Entry,

    pub const Entry = struct { key: Value, value: Value };

    /// The value under string key `name`, or `.nil` when absent or when this is not a map,
    /// so that lookups chain like `rec.get("Email").asStr()` with missing = null.
    pub fn get(self: Value, name: []const u8) Value {
        if (self.entry(name)) |e| return e.value;
        return .nil;
    }

    /// A pointer to the entry under `name`, for in-place edits.
    pub fn entry(self: Value, name: []const u8) ?*Entry {
        if (self != .map) return null;
        for (self.map) |*e| {
            if (e.key == .str and std.mem.eql(u8, e.key.str, name)) return e;
        }
        return null;
    }

    pub fn isNil(self: Value) bool {
        return self == .nil;
    }

    /// The text of a str, else null.
    pub fn asStr(self: Value) ?[]const u8 {
        return if (self == .str) self.str else null;
    }

    pub fn asBool(self: Value) ?bool {
        return if (self == .bool) self.bool else null;
    }

    /// Any number as an i64: floats truncate toward zero and saturate (NaN is null), because
    /// CRM numeric fields arrive as int or float depending on their scale.
    pub fn asInt(self: Value) ?i64 {
        return switch (self) {
            .int => |i| i,
            .uint => std.math.maxInt(i64),
            .float => |f| if (std.math.isNan(f)) null else std.math.lossyCast(i64, @trunc(f)),
            else => null,
        };
    }

    /// Any number as an f64.
    pub fn asFloat(self: Value) ?f64 {
        return switch (self) {
            .int => |i| @floatFromInt(i),
            .uint => |u| @floatFromInt(u),
            .float => |f| f,
            else => null,
        };
    }

    /// The items of an array; empty for anything else (nil included).
    pub fn items(self: Value) []Value {
        return if (self == .array) self.array else &.{};
    }

    /// Sets `name` to `value` (any scalar `of` accepts, or a Value), replacing an existing
    /// entry or appending one. Grows the map with `gpa`, so the map's old slice is abandoned
    /// (fine with the per-call arena).
    pub fn put(self: *Value, gpa: Allocator, name: []const u8, value: anytype) Allocator.Error!void {
        const v = of(value);
        if (self.entry(name)) |e| {
            e.value = v;
            return;
        }
        const old: []Entry = if (self.* == .map) self.map else &.{};
        const grown = try gpa.alloc(Entry, old.len + 1);
        @memcpy(grown[0..old.len], old);
        grown[old.len] = .{ .key = .{ .str = name }, .value = v };
        self.* = .{ .map = grown };
    }

    /// Converts a Zig scalar (int, float, bool, string, null, optional, Value) to a Value.
    pub fn of(x: anytype) Value {
        const T = @TypeOf(x);
        if (T == Value) return x;
        switch (@typeInfo(T)) {
            .null => return .nil,
            .bool => return .{ .bool = x },
            .comptime_int => return if (x > std.math.maxInt(i64)) .{ .uint = x } else .{ .int = x },
            .int => |info| {
                if (info.signedness == .unsigned and info.bits >= 64 and x > std.math.maxInt(i64))
                    return .{ .uint = x };
                return .{ .int = @intCast(x) };
            },
            .comptime_float, .float => return .{ .float = x },
            .optional => return if (x) |inner| of(inner) else .nil,
            else => return .{ .str = x }, // strings; anything else fails to compile here
        }
    }
};

/// Bytes to encode as msgpack bin rather than str (e.g. an HTTP body).
pub const Bytes = struct { data: []const u8 };

pub const DecodeError = error{ Malformed, TooDeep } || Allocator.Error;

/// Nesting deeper than this is refused: the guest stack is small (64 KiB) and the ABI's
/// messages are at most a few levels deep.
pub const max_depth = 64;

/// Decodes exactly one value spanning all of `bytes`. Containers are allocated with `gpa`.
pub fn decode(gpa: Allocator, bytes: []const u8) DecodeError!Value {
    var d = Decoder{ .bytes = bytes, .gpa = gpa };
    const v = try d.value(0);
    if (d.pos != bytes.len) return error.Malformed;
    return v;
}

const Decoder = struct {
    bytes: []const u8,
    pos: usize = 0,
    gpa: Allocator,

    fn take(d: *Decoder, n: usize) DecodeError![]const u8 {
        if (n > d.bytes.len - d.pos) return error.Malformed;
        const s = d.bytes[d.pos .. d.pos + n];
        d.pos += n;
        return s;
    }

    fn be(d: *Decoder, comptime T: type) DecodeError!T {
        const s = try d.take(@sizeOf(T));
        return std.mem.readInt(T, s[0..@sizeOf(T)], .big);
    }

    fn value(d: *Decoder, depth: usize) DecodeError!Value {
        if (depth > max_depth) return error.TooDeep;
        const b = (try d.take(1))[0];
        return switch (b) {
            0x00...0x7f => .{ .int = b },
            0x80...0x8f => d.map(b & 0x0f, depth),
            0x90...0x9f => d.array(b & 0x0f, depth),
            0xa0...0xbf => .{ .str = try d.take(b & 0x1f) },
            0xc0 => .nil,
            0xc2 => .{ .bool = false },
            0xc3 => .{ .bool = true },
            0xc4 => .{ .bin = try d.take(try d.be(u8)) },
            0xc5 => .{ .bin = try d.take(try d.be(u16)) },
            0xc6 => .{ .bin = try d.take(try d.be(u32)) },
            0xca => .{ .float = @as(f32, @bitCast(try d.be(u32))) },
            0xcb => .{ .float = @bitCast(try d.be(u64)) },
            0xcc => .{ .int = try d.be(u8) },
            0xcd => .{ .int = try d.be(u16) },
            0xce => .{ .int = try d.be(u32) },
            0xcf => blk: {
                const u = try d.be(u64);
                break :blk if (u > std.math.maxInt(i64)) .{ .uint = u } else .{ .int = @intCast(u) };
            },
            0xd0 => .{ .int = try d.be(i8) },
            0xd1 => .{ .int = try d.be(i16) },
            0xd2 => .{ .int = try d.be(i32) },
            0xd3 => .{ .int = try d.be(i64) },
            0xd9 => .{ .str = try d.take(try d.be(u8)) },
            0xda => .{ .str = try d.take(try d.be(u16)) },
            0xdb => .{ .str = try d.take(try d.be(u32)) },
            0xdc => d.array(try d.be(u16), depth),
            0xdd => d.array(try d.be(u32), depth),
            0xde => d.map(try d.be(u16), depth),
            0xdf => d.map(try d.be(u32), depth),
            0xe0...0xff => .{ .int = @as(i8, @bitCast(b)) },
            else => error.Malformed, // 0xc1 (never used) and the ext family
        };
    }

    fn array(d: *Decoder, n: usize, depth: usize) DecodeError!Value {
        // Every element takes at least one byte: refuse counts the input cannot hold
        // before allocating for them.
        if (n > d.bytes.len - d.pos) return error.Malformed;
        const out = try d.gpa.alloc(Value, n);
        for (out) |*v| v.* = try d.value(depth + 1);
        return .{ .array = out };
    }

    fn map(d: *Decoder, n: usize, depth: usize) DecodeError!Value {
        if (n > (d.bytes.len - d.pos) / 2) return error.Malformed;
        const out = try d.gpa.alloc(Value.Entry, n);
        for (out) |*e| e.* = .{ .key = try d.value(depth + 1), .value = try d.value(depth + 1) };
        return .{ .map = out };
    }
};

/// A growable byte buffer that msgpack is written into.
pub const Encoder = struct {
    gpa: Allocator,
    buf: []u8 = &.{},
    len: usize = 0,

    pub fn init(gpa: Allocator) Encoder {
        return .{ .gpa = gpa };
    }

    /// The bytes written so far (owned by `gpa`).
    pub fn written(e: *const Encoder) []u8 {
        return e.buf[0..e.len];
    }

    fn reserve(e: *Encoder, n: usize) Allocator.Error![]u8 {
        if (e.buf.len - e.len < n) {
            const cap = @max(e.buf.len * 2, e.len + n, 64);
            e.buf = try e.gpa.realloc(e.buf, cap);
        }
        const s = e.buf[e.len .. e.len + n];
        e.len += n;
        return s;
    }

    fn byte(e: *Encoder, b: u8) Allocator.Error!void {
        (try e.reserve(1))[0] = b;
    }

    fn headerBe(e: *Encoder, tag: u8, comptime T: type, x: T) Allocator.Error!void {
        const s = try e.reserve(1 + @sizeOf(T));
        s[0] = tag;
        std.mem.writeInt(T, s[1..][0..@sizeOf(T)], x, .big);
    }

    pub fn writeNil(e: *Encoder) Allocator.Error!void {
        try e.byte(0xc0);
    }

    pub fn writeBool(e: *Encoder, b: bool) Allocator.Error!void {
        try e.byte(if (b) 0xc3 else 0xc2);
    }

    pub fn writeUint(e: *Encoder, u: u64) Allocator.Error!void {
        if (u <= 0x7f) return e.byte(@intCast(u));
        if (u <= 0xff) return e.headerBe(0xcc, u8, @intCast(u));
        if (u <= 0xffff) return e.headerBe(0xcd, u16, @intCast(u));
        if (u <= 0xffff_ffff) return e.headerBe(0xce, u32, @intCast(u));
        return e.headerBe(0xcf, u64, u);
    }

    /// Non-negative ints use the unsigned forms, as Python's packer does.
    pub fn writeInt(e: *Encoder, i: i64) Allocator.Error!void {
        if (i >= 0) return e.writeUint(@intCast(i));
        if (i >= -32) return e.byte(@bitCast(@as(i8, @intCast(i))));
        if (i >= std.math.minInt(i8)) return e.headerBe(0xd0, i8, @intCast(i));
        if (i >= std.math.minInt(i16)) return e.headerBe(0xd1, i16, @intCast(i));
        if (i >= std.math.minInt(i32)) return e.headerBe(0xd2, i32, @intCast(i));
        return e.headerBe(0xd3, i64, i);
    }

    pub fn writeFloat(e: *Encoder, f: f64) Allocator.Error!void {
        try e.headerBe(0xcb, u64, @bitCast(f));
    }

    pub fn writeStr(e: *Encoder, s: []const u8) Allocator.Error!void {
        if (s.len <= 31) {
            try e.byte(0xa0 | @as(u8, @intCast(s.len)));
        } else if (s.len <= 0xff) {
            try e.headerBe(0xd9, u8, @intCast(s.len));
        } else if (s.len <= 0xffff) {
            try e.headerBe(0xda, u16, @intCast(s.len));
        } else {
            try e.headerBe(0xdb, u32, @intCast(s.len));
        }
        @memcpy(try e.reserve(s.len), s);
    }

    pub fn writeBin(e: *Encoder, s: []const u8) Allocator.Error!void {
        if (s.len <= 0xff) {
            try e.headerBe(0xc4, u8, @intCast(s.len));
        } else if (s.len <= 0xffff) {
            try e.headerBe(0xc5, u16, @intCast(s.len));
        } else {
            try e.headerBe(0xc6, u32, @intCast(s.len));
        }
        @memcpy(try e.reserve(s.len), s);
    }

    /// Starts an array of `n` items; the caller writes the items next.
    pub fn beginArray(e: *Encoder, n: usize) Allocator.Error!void {
        if (n <= 15) return e.byte(0x90 | @as(u8, @intCast(n)));
        if (n <= 0xffff) return e.headerBe(0xdc, u16, @intCast(n));
        return e.headerBe(0xdd, u32, @intCast(n));
    }

    /// Starts a map of `n` entries; the caller writes key, value, key, value... next.
    pub fn beginMap(e: *Encoder, n: usize) Allocator.Error!void {
        if (n <= 15) return e.byte(0x80 | @as(u8, @intCast(n)));
        if (n <= 0xffff) return e.headerBe(0xde, u16, @intCast(n));
        return e.headerBe(0xdf, u32, @intCast(n));
    }

    pub fn writeValue(e: *Encoder, v: Value) Allocator.Error!void {
        switch (v) {
            .nil => try e.writeNil(),
            .bool => |b| try e.writeBool(b),
            .int => |i| try e.writeInt(i),
            .uint => |u| try e.writeUint(u),
            .float => |f| try e.writeFloat(f),
            .str => |s| try e.writeStr(s),
            .bin => |s| try e.writeBin(s),
            .array => |a| {
                try e.beginArray(a.len);
                for (a) |item| try e.writeValue(item);
            },
            .map => |m| {
                try e.beginMap(m.len);
                for (m) |en| {
                    try e.writeValue(en.key);
                    try e.writeValue(en.value);
                }
            },
        }
    }

    /// Writes any Zig value the way a Python host would see it: structs become maps keyed by
    /// field name, tuples/slices/arrays become arrays, `[]const u8` and string literals become
    /// str, `Bytes` becomes bin, optionals become the value or nil, enums their tag name.
    pub fn write(e: *Encoder, x: anytype) Allocator.Error!void {
        const T = @TypeOf(x);
        if (T == Value) return e.writeValue(x);
        if (T == Bytes) return e.writeBin(x.data);
        switch (@typeInfo(T)) {
            .void, .null => try e.writeNil(),
            .bool => try e.writeBool(x),
            .comptime_int => if (x < 0) try e.writeInt(x) else try e.writeUint(x),
            .int => |info| {
                if (info.bits > 64) @compileError("msgpack ints are at most 64 bits: " ++ @typeName(T));
                if (info.signedness == .signed) try e.writeInt(x) else try e.writeUint(x);
            },
            .comptime_float, .float => try e.writeFloat(@floatCast(x)),
            .optional => if (x) |inner| try e.write(inner) else try e.writeNil(),
            .@"enum", .enum_literal => try e.writeStr(@tagName(x)),
            .array => |info| if (info.child == u8) try e.writeStr(&x) else try e.writeSlice(&x),
            .pointer => |info| switch (info.size) {
                .slice => if (info.child == u8) try e.writeStr(x) else try e.writeSlice(x),
                .one => switch (@typeInfo(info.child)) {
                    .array => |arr| if (arr.child == u8) try e.writeStr(x) else try e.writeSlice(x),
                    else => try e.write(x.*),
                },
                else => @compileError("cannot encode pointer type " ++ @typeName(T)),
            },
            .@"struct" => |info| {
                if (info.is_tuple) {
                    try e.beginArray(info.field_names.len);
                    inline for (info.field_names) |name| try e.write(@field(x, name));
                } else {
                    try e.beginMap(info.field_names.len);
                    inline for (info.field_names) |name| {
                        try e.writeStr(name);
                        try e.write(@field(x, name));
                    }
                }
            },
            else => @compileError("cannot encode type " ++ @typeName(T)),
        }
    }

    fn writeSlice(e: *Encoder, s: anytype) Allocator.Error!void {
        try e.beginArray(s.len);
        for (s) |item| try e.write(item);
    }
};

/// Encodes `x` (see `Encoder.write`) into a new buffer owned by `gpa`.
pub fn encode(gpa: Allocator, x: anytype) Allocator.Error![]u8 {
    var e = Encoder.init(gpa);
    try e.write(x);
    return e.written();
}

// ---------------------------------------------------------------------------------------------
// Tests (run natively: python -m ziglang test guest_sdk/zig/msgpack.zig)

const testing = std.testing;

fn expectEncodes(expected_hex: []const u8, x: anytype) !void {
    var arena = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena.deinit();
    const got = try encode(arena.allocator(), x);
    var expected: [64]u8 = undefined;
    const want = try std.fmt.hexToBytes(&expected, expected_hex);
    try testing.expectEqualSlices(u8, want, got);
    // and back: decoding then re-encoding is the identity on smallest encodings
    const again = try encode(arena.allocator(), try decode(arena.allocator(), got));
    try testing.expectEqualSlices(u8, want, again);
}

test "ints use the smallest encoding, unsigned forms for non-negatives" {
    try expectEncodes("00", 0);
    try expectEncodes("7f", 127);
    try expectEncodes("cc80", 128);
    try expectEncodes("cd0100", 256);
    try expectEncodes("ce00010000", 65536);
    try expectEncodes("cf0000000100000000", 4294967296);
    try expectEncodes("cfffffffffffffffff", std.math.maxInt(u64));
    try expectEncodes("ff", -1);
    try expectEncodes("e0", -32);
    try expectEncodes("d0df", -33);
    try expectEncodes("d1ff7f", -129);
    try expectEncodes("d2ffff7fff", -32769);
    try expectEncodes("d38000000000000000", std.math.minInt(i64));
    try expectEncodes("cc80", @as(i32, 128));
    try expectEncodes("ff", @as(i8, -1));
}

test "floats are always float64; scalars and strings" {
    try expectEncodes("cb3ff0000000000000", 1.0);
    try expectEncodes("cb3fe0000000000000", @as(f32, 0.5));
    try expectEncodes("c0", null);
    try expectEncodes("c3", true);
    try expectEncodes("a0", "");
    try expectEncodes("a3616263", "abc");
    try expectEncodes("c403010203", Bytes{ .data = &.{ 1, 2, 3 } });
    try expectEncodes("a46865616c", .heal);
}

test "structs are maps in field order, tuples and slices are arrays" {
    try expectEncodes("82a673636f72656402a767726164655f6101", .{ .scored = 2, .grade_a = 1 });
    try expectEncodes("9301a162c0", .{ 1, "b", null });
    const ids = [_][]const u8{ "a", "b" };
    try expectEncodes("92a161a162", ids[0..]);
    const Row = struct { Id: []const u8, n: ?i64 };
    try expectEncodes("9182a24964a178a16ec0", &[_]Row{.{ .Id = "x", .n = null }});
}

test "length boundaries switch header forms" {
    var arena = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena.deinit();
    const a = arena.allocator();
    const s32: [32]u8 = @splat('x');
    try testing.expectEqualSlices(u8, &.{ 0xd9, 32 }, (try encode(a, &s32))[0..2]);
    const s256: [256]u8 = @splat('x');
    try testing.expectEqualSlices(u8, &.{ 0xda, 1, 0 }, (try encode(a, &s256))[0..3]);
    const b256: [256]u8 = @splat(0);
    try testing.expectEqualSlices(u8, &.{ 0xc5, 1, 0 }, (try encode(a, Bytes{ .data = &b256 }))[0..3]);
    const arr16: [16]Value = @splat(.{ .int = 0 });
    try testing.expectEqualSlices(u8, &.{ 0xdc, 0, 16 }, (try encode(a, &arr16))[0..3]);
    const map16: [16]Value.Entry = @splat(.{ .key = .nil, .value = .nil });
    try testing.expectEqualSlices(u8, &.{ 0xde, 0, 16 }, (try encode(a, Value{ .map = @constCast(&map16) }))[0..3]);
}

test "decoder accepts wide forms and float32, rejects truncation, trailing bytes and ext" {
    var arena = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena.deinit();
    const a = arena.allocator();
    try testing.expectEqual(@as(i64, 5), (try decode(a, &.{ 0xcf, 0, 0, 0, 0, 0, 0, 0, 5 })).int);
    try testing.expectEqual(@as(f64, 1.5), (try decode(a, &.{ 0xca, 0x3f, 0xc0, 0, 0 })).float);
    try testing.expectError(error.Malformed, decode(a, &.{ 0xa3, 'a' }));
    try testing.expectError(error.Malformed, decode(a, &.{ 0xc0, 0xc0 }));
    try testing.expectError(error.Malformed, decode(a, &.{ 0xd4, 1, 2 }));
    try testing.expectError(error.Malformed, decode(a, &.{ 0xdd, 0xff, 0xff, 0xff, 0xff }));
    try testing.expectError(error.Malformed, decode(a, &.{}));
    var deep: [max_depth + 3]u8 = @splat(0x91);
    deep[deep.len - 1] = 0xc0;
    try testing.expectError(error.TooDeep, decode(a, &deep));
}

test "accessors: missing is null, numbers convert, put adds and replaces" {
    var arena = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena.deinit();
    const a = arena.allocator();
    const bytes = try encode(a, .{ .Name = "Ada", .Visits = 3.9, .Size = -4, .Vip = true, .Tags = .{ "x", "y" } });
    var rec = try decode(a, bytes);
    try testing.expectEqualStrings("Ada", rec.get("Name").asStr().?);
    try testing.expectEqual(@as(?i64, 3), rec.get("Visits").asInt());
    try testing.expectEqual(@as(?f64, -4), rec.get("Size").asFloat());
    try testing.expectEqual(@as(?bool, true), rec.get("Vip").asBool());
    try testing.expectEqual(@as(usize, 2), rec.get("Tags").items().len);
    try testing.expect(rec.get("Missing").isNil());
    try testing.expectEqual(@as(?[]const u8, null), rec.get("Missing").asStr());
    try testing.expectEqual(@as(?i64, null), rec.get("Name").asInt());
    try testing.expect(rec.get("Name").get("nested").isNil());
    try rec.put(a, "Name", "Grace");
    try rec.put(a, "Score", 98);
    try testing.expectEqualStrings("Grace", rec.get("Name").asStr().?);
    try testing.expectEqual(@as(?i64, 98), rec.get("Score").asInt());
    try testing.expectEqual(@as(usize, 6), rec.map.len);
}
