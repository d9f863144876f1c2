"""The image editor API under /api/v1/image-editor."""
