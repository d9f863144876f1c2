"""Row ids are UUIDv7: valid UUIDs that sort by creation time."""

from __future__ import annotations

import time
import uuid

from mediagate.db.base import new_id


def test_ids_are_version_7_and_grow_with_time() -> None:
    first = new_id()
    time.sleep(0.002)
    later = [new_id() for _ in range(1000)]
    parsed = uuid.UUID(first)
    assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, first)
    assert all(first < other for other in later)  # a later millisecond sorts after
    assert len(set(later)) == 1000
    millis = int(first.replace("-", "")[:12], 16)
    assert abs(millis - time.time() * 1000) < 5_000
