"""The reference shop: a Reorder API server with fault knobs."""
