"""Plans: daily quotas per workspace and per-minute request limits per key."""
