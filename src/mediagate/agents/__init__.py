"""Saved image agents: named presets of standing instructions and defaults."""
