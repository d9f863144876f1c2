"""Hosted generation providers: one adapter module per provider behind one protocol, and the
engine that routes a job across a model's routes with retries, fallback and circuit breakers."""
