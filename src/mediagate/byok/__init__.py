"""Bring your own key: a workspace's own provider keys, encrypted at rest."""
