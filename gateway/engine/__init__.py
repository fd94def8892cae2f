"""The two threads that run the core (decider) and drain the outbox (sender)."""
