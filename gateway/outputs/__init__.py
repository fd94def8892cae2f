"""Outputs: LED patterns, decision reports, Home Assistant."""
