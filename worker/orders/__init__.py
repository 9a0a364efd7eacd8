"""Orders placed through the supplier: pure checks and lifecycle, use cases, the CLI group."""
