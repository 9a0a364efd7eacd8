"""A faithful local stand-in of the ticket supplier (CONTRACT.md), with fault injection.

Start one with ``supplier_sandbox.server.start_sandbox(SandboxConfig(...))``; the CLI command
is ``supplier_sandbox.cli.sandbox``. Nothing is started or built at import.
"""
