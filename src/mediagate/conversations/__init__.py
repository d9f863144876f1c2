"""Chat conversations: the history kept per workspace so that a chat can continue."""
