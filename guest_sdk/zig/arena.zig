//! The per-call arena: a bump allocator over the guest's linear memory, above `__heap_base`.
//!
//! Everything a `handle` call allocates (the event the host writes, host replies, decoded
//! values, encoded output) lives until `cabi_post_handle`, which resets the arena in one step.
//! Memory pages grown for a large call stay with the instance and are reused by the next one.
//! When `memory.grow` fails (the host's memory limit) allocation returns null, which
//! `std.mem.Allocator` users see as `error.OutOfMemory`.

const std = @import("std");
const Alignment = std.mem.Alignment;

const page_size = 65536;

/// Set by the linker: the first byte after static data and the stack.
extern const __heap_base: u8;

var start: usize = 0;
var top: usize = 0;

fn ensureInit() void {
    if (start == 0) {
        start = std.mem.alignForward(usize, @intFromPtr(&__heap_base), 16);
        top = start;
    }
}

/// Frees everything allocated since the last reset.
pub fn reset() void {
    ensureInit();
    top = start;
}

/// Bytes currently allocated (for tests and diagnostics).
pub fn used() usize {
    ensureInit();
    return top - start;
}

/// Grows linear memory so that addresses below `end` are valid.
fn cover(end: usize) bool {
    const have = @wasmMemorySize(0) * page_size;
    if (end <= have) return true;
    const pages = (end - have + page_size - 1) / page_size;
    return @wasmMemoryGrow(0, pages) != -1;
}

/// Allocates `len` bytes aligned to `alignment` bytes; null when memory cannot grow.
pub fn allocBytes(len: usize, alignment: usize) ?[*]u8 {
    ensureInit();
    const at = std.mem.alignForward(usize, top, alignment);
    const end = std.math.add(usize, at, len) catch return null;
    if (!cover(end)) return null;
    top = end;
    return @ptrFromInt(at);
}

fn isLast(memory: []u8) bool {
    return @intFromPtr(memory.ptr) + memory.len == top;
}

fn alloc(_: *anyopaque, len: usize, alignment: Alignment, _: usize) ?[*]u8 {
    return allocBytes(len, alignment.toByteUnits());
}

/// In place: always when shrinking; when growing only the most recent allocation.
fn resize(_: *anyopaque, memory: []u8, _: Alignment, new_len: usize, _: usize) bool {
    if (!isLast(memory)) return new_len <= memory.len;
    const end = @intFromPtr(memory.ptr) + new_len;
    if (!cover(end)) return false;
    top = end;
    return true;
}

fn remap(ctx: *anyopaque, memory: []u8, alignment: Alignment, new_len: usize, ra: usize) ?[*]u8 {
    return if (resize(ctx, memory, alignment, new_len, ra)) memory.ptr else null;
}

/// Only the most recent allocation is given back; the rest waits for `reset`.
fn free(_: *anyopaque, memory: []u8, _: Alignment, _: usize) void {
    if (isLast(memory)) top = @intFromPtr(memory.ptr);
}

const vtable: std.mem.Allocator.VTable = .{ .alloc = alloc, .resize = resize, .remap = remap, .free = free };

/// The arena as a `std.mem.Allocator`.
pub const allocator: std.mem.Allocator = .{ .ptr = undefined, .vtable = &vtable };
