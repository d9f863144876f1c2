"""The generate & chat API (``/api/generate``, ``/api/status/:jobId``, ``/api/chat``)."""
