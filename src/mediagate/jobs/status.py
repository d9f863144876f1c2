"""The job lifecycle, asserted in one place."""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    def is_terminal(self) -> bool:
        return self in _TERMINAL

    def can_become(self, other: JobStatus) -> bool:
        return other in _TRANSITIONS[self]


_TERMINAL = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED}
_TRANSITIONS: dict[JobStatus, set[JobStatus]] = {
    # processing -> queued is a rescue: the lease expired and the job goes back for another try.
    JobStatus.QUEUED: {JobStatus.PROCESSING, JobStatus.CANCELED, JobStatus.FAILED},
    JobStatus.PROCESSING: {
        JobStatus.QUEUED,
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.CANCELED,
    },
    JobStatus.COMPLETED: set(),
    JobStatus.FAILED: set(),
    JobStatus.CANCELED: set(),
}


class InvalidTransition(RuntimeError):
    pass


def assert_transition(current: JobStatus, new: JobStatus) -> None:
    if not current.can_become(new):
        raise InvalidTransition(f"job cannot go from {current} to {new}")
