"""The SQLite outbox: schema, the writer that applies decisions, read-only views."""
