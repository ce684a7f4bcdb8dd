"""The SOQL subset guests may run: text in, a small typed AST out (``parser``)."""
