"""Principals of API keys, kept in process while the auth epoch stands still.

Every update or delete of a key, a member or a workspace bumps the one-row ``auth_epoch``
counter (database triggers, whichever process makes the change). A request reads the counter
first; entries are valid only for the value read before they were loaded, so a change that
commits while a key is being loaded is never hidden: the next request reads the new value and
starts over.
"""

from __future__ import annotations

from collections import OrderedDict

from mediagate.auth.principal import Principal

MAX_ENTRIES = 10_000


class PrincipalCache:
    """Key hash -> principal, for one epoch at a time; least recently used entries go first.

    >>> cache = PrincipalCache()
    >>> cache.put("hash", 7, principal)  # doctest: +SKIP
    >>> cache.get("hash", 7) is principal, cache.get("hash", 8)  # doctest: +SKIP
    (True, None)
    """

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.epoch: int | None = None
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, Principal] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key_hash: str, epoch: int) -> Principal | None:
        """The principal cached at ``epoch``; any other epoch empties the cache."""
        if epoch != self.epoch:
            self._entries.clear()
            self.epoch = epoch
        principal = self._entries.get(key_hash)
        if principal is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key_hash)
        self.hits += 1
        return principal

    def put(self, key_hash: str, epoch: int, principal: Principal) -> None:
        """Keep ``principal``, loaded after reading ``epoch``; dropped when the epoch moved
        meanwhile (another request saw the change first)."""
        if epoch != self.epoch:
            return
        self._entries[key_hash] = principal
        self._entries.move_to_end(key_hash)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
