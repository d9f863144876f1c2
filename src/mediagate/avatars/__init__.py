"""Avatars: generated characters, the reference library that ships with the package, and the
avatars a workspace saves for reuse (for example as image-editor characters)."""
