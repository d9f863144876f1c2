"""The image agent API (``/v2/image/agent``, ``/v2/agents``); jobs are the native ones."""
