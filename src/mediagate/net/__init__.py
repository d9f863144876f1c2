"""Outbound networking helpers: the guarded fetcher used for every user-supplied URL."""
