"""Row ids are UUIDv7: valid UUIDs that sort by creation time."""

from __future__ import annotations

import os
import time
import uuid
import warnings

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


def test_ids_drawn_from_one_buffer_differ_across_refills_and_forks() -> None:
    # 5,000 ids use more than ten 4 KiB draws of random bytes.
    ids = {new_id() for _ in range(5_000)}
    assert len(ids) == 5_000
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Newer Pythons warn about forking a process with threads; the child only writes.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child's first id must not repeat the parent's next one
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    assert uuid.UUID(child).version == 7
    assert child[14:] != new_id()[14:]  # the random parts differ
