"""Workspaces (tenants) and their members."""
