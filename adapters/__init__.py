"""All I/O to external systems, one module per peer. Adapters move bytes and hand them to
mappings; they never interpret XML themselves."""
