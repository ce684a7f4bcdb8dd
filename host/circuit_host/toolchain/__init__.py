"""Building circuits: Zig modules with the Zig SDK, Python components with componentize-py, and
a Python circuit's vendored pure-Python dependencies."""
