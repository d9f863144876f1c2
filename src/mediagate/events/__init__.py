"""Cross-process notifications: job events, queue wake-ups and cancel requests."""
