"""Auto-instrumentation: one module (or small package) per library, discovered by entry point."""
