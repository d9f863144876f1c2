"""Idempotent creation: a client-chosen key attaches a retry to the first request's result."""
