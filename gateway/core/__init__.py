"""The pure core: events, every rule, the retry policy. Imports no adapter."""
