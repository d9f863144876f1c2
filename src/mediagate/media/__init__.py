"""Moving media made on this machine (the sandbox video renderer)."""
