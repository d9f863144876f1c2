"""API surfaces: thin translation layers from each public API to the core services."""
