"""Database plumbing: the declarative base, column types and the engine wrapper."""
