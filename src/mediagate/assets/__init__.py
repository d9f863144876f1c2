"""Stored files: content-addressed blobs, their records and signed URLs."""
