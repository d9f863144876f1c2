"""Planners choose the next step. Two implementations share one small interface:

* :class:`RuleBasedPlanner` (``rules.py``): keyword rules, offline; sandbox keys use it.
* :class:`LLMPlanner` (``llm.py``): tool calling through an OpenAI-compatible chat model.

A planner object serves one run: it may remember what it planned or what the model said.
"""

from __future__ import annotations

from typing import Any, Protocol

from mediagate.agent.errors import PlannerError
from mediagate.agent.llm import LLMPlanner
from mediagate.agent.rules import RuleBasedPlanner
from mediagate.agent.state import AgentState, Step

__all__ = ["LLMPlanner", "Planner", "PlannerError", "RuleBasedPlanner", "planner_for"]


class Planner(Protocol):
    """Chooses each step from the state: ``step = await planner.next_step(state)``."""

    name: str

    async def next_step(self, state: AgentState) -> Step: ...


def planner_for(sandbox: bool, llm: dict[str, Any] | None) -> Planner:
    """A fresh planner for one run.

    Sandbox keys, and installs without a chat model (``llm`` is None), get the rule-based
    planner. Otherwise ``llm`` holds ``base_url`` and ``model`` and optionally ``api_key``,
    ``timeout`` and ``transport`` (an ``httpx.AsyncBaseTransport``).

    >>> planner_for(True, None).name
    'builtin'
    """
    if sandbox or llm is None:
        return RuleBasedPlanner()
    missing = [key for key in ("base_url", "model") if not llm.get(key)]
    if missing:
        raise ValueError(f"chat model settings lack {', '.join(missing)}")
    unknown = set(llm) - {"base_url", "model", "api_key", "timeout", "transport"}
    if unknown:
        raise ValueError(f"unknown chat model setting(s): {', '.join(sorted(unknown))}")
    return LLMPlanner(
        base_url=llm["base_url"],
        api_key=llm.get("api_key"),
        model=llm["model"],
        transport=llm.get("transport"),
        timeout=float(llm.get("timeout", 60)),
    )
