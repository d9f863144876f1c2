"""Jobs: the unit of generation, its lifecycle, events and the worker that runs it."""
