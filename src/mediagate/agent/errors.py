"""Errors raised by the agent; each module re-exports the ones it raises."""

from __future__ import annotations


class ToolError(ValueError):
    """A tool was called with arguments it cannot use, or on a state it cannot work on."""


class PlannerError(Exception):
    """The planner could not choose a step. ``retryable`` failures may succeed if run again.

    >>> PlannerError("rate limited", retryable=True).retryable
    True
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class AgentCanceled(Exception):
    """The run was canceled between two steps."""
