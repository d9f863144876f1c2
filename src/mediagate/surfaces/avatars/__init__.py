"""The avatars API (``/api/v1/avatars``, ``/api/v1/jobs``)."""
