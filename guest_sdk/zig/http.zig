//! `circuit:script/http`: outbound HTTP through the host (allowlisted hosts only).

const std = @import("std");
const abi = @import("abi.zig");
const arena = @import("arena.zig");
const host = @import("host.zig");
const msgpack = @import("msgpack.zig");
const Value = msgpack.Value;

pub const CalloutError = error{ CalloutFailed, OutOfMemory };

pub const Header = struct { name: []const u8, value: []const u8 };

pub const Request = struct {
    method: []const u8 = "GET",
    url: []const u8,
    headers: []const Header = &.{},
    /// Sent as raw bytes (msgpack bin); null sends no body.
    body: ?[]const u8 = null,
    /// null: the host's default.
    timeout_ms: ?u32 = null,
};

pub const Response = struct {
    /// Any status is a response (as in Apex); only refusals and failures are errors.
    status: i64,
    /// A map of header name to value.
    headers: Value,
    body: []const u8,

    /// The value of header `name`, compared case-insensitively.
    pub fn header(self: Response, name: []const u8) ?[]const u8 {
        if (self.headers != .map) return null;
        for (self.headers.map) |e| {
            const key = e.key.asStr() orelse continue;
            if (std.ascii.eqlIgnoreCase(key, name)) return e.value.asStr();
        }
        return null;
    }
};

/// Sends `request`. `error.CalloutFailed` (see `circuit.lastError()`) means the host refused
/// it (not allowlisted) or it failed (connection, timeout, response too large).
pub fn callout(request: Request) CalloutError!Response {
    const reply = try host.result(abi.callout(try encodeRequest(request)), error.CalloutFailed, "callout");
    const body = reply.get("body");
    return .{
        .status = host.field(reply, "status", "callout").asInt() orelse 0,
        .headers = reply.get("headers"),
        .body = switch (body) {
            .bin, .str => |b| b,
            else => &.{},
        },
    };
}

/// Only the fields that are set, with headers as a map, as the ABI expects.
fn encodeRequest(r: Request) error{OutOfMemory}![]u8 {
    var e = msgpack.Encoder.init(arena.allocator);
    var n: usize = 2;
    if (r.headers.len > 0) n += 1;
    if (r.body != null) n += 1;
    if (r.timeout_ms != null) n += 1;
    try e.beginMap(n);
    try e.writeStr("method");
    try e.writeStr(r.method);
    try e.writeStr("url");
    try e.writeStr(r.url);
    if (r.headers.len > 0) {
        try e.writeStr("headers");
        try e.beginMap(r.headers.len);
        for (r.headers) |h| {
            try e.writeStr(h.name);
            try e.writeStr(h.value);
        }
    }
    if (r.body) |body| {
        try e.writeStr("body");
        try e.writeBin(body);
    }
    if (r.timeout_ms) |ms| {
        try e.writeStr("timeout_ms");
        try e.writeUint(ms);
    }
    return e.written();
}
