"""API keys, bearer authentication, scopes and the identity exchange."""
