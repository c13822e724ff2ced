"""RFC 9111 caching and RFC 9110 conditional/range logic as pure functions (no I/O)."""
