"""The native API and the agent credits API (``/v1``, ``/auth``, ``/agent``, ``/llms.txt``)."""
