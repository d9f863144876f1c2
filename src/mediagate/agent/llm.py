"""The LLM planner: each step is one chat-completions call in which the model picks a tool.

Speaks the OpenAI wire format (``POST {base_url}/chat/completions`` with ``tools``), which most
hosted and self-hosted chat servers accept. httpx's transport is the seam for tests and for the
operator's network policy. The base URL is operator configuration, not user input, so it does
not go through the SSRF guard.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from mediagate.agent import tools
from mediagate.agent.errors import PlannerError, ToolError
from mediagate.agent.state import TOOLS, AgentState, Step, nearest_ratio
from mediagate.agent.tool_specs import default_summary, openai_tools
from mediagate.net.borrowed import BorrowedTransport

SYSTEM_PROMPT = """\
You plan the steps of an image-making agent. On each turn call exactly one tool; after it runs \
you get the result and choose the next step. Input images are referred to by 0-based index; \
"the current image" is the result of the last step (before the first step, tools that need an \
image use input 0).
Every call is one step and the run stops at the step budget, so use as few steps as the \
instructions need. The final image must have the target aspect ratio and resolution: use \
reframe and resize (the run does it anyway at the end if you do not). Add text after \
reframing so that a crop cannot cut it. Call finish as soon as the current image satisfies \
the instructions.
With every tool call, write one short sentence saying what the step does; the user sees it \
as progress."""

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


class LLMPlanner:
    """Asks a chat model for each step.

    >>> planner = LLMPlanner(base_url="http://127.0.0.1:8000/v1", api_key=None, model="m")

    A reply without a tool call means finish. A tool call with arguments the tool rejects is
    handed back to the model as the tool's error, up to ``max_invalid_calls`` times per step,
    without costing a step. Unknown tools, malformed JSON and HTTP failures raise
    :class:`PlannerError` (``retryable`` for timeouts, network errors, 408/409/425/429, 5xx).
    """

    name = "llm"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 60,
        max_invalid_calls: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.max_invalid_calls = max_invalid_calls
        self._api_key = api_key or None
        self._transport = BorrowedTransport(transport) if transport is not None else None
        self._call_ids: dict[int, str] = {}  # history index -> the model's tool_call id
        self._results: dict[int, str] = {}  # history index -> what we told the model

    def __repr__(self) -> str:  # never show the key
        return f"LLMPlanner(base_url={self.base_url!r}, model={self.model!r})"

    async def next_step(self, state: AgentState) -> Step:
        messages = self._conversation(state)
        problem = ""
        for _attempt in range(self.max_invalid_calls + 1):
            message = await self._complete(messages, openai_tools(state.allowed_tools))
            content = message.get("content")
            said = " ".join(content.split())[:200] if isinstance(content, str) else ""
            call = _first_tool_call(message)
            if call is None:
                return Step("finish", {}, said or "Finished")
            call_id, name, args = call
            call_id = call_id or f"call_{len(state.history) + 1}"
            if name not in state.allowed_tools:
                known = "a tool not allowed in this run" if name in TOOLS else "an unknown tool"
                raise PlannerError(f"the chat model called {known}: {name!r}")
            step = Step(name, args, said or default_summary(name, args))
            try:
                tools.validate(step, state)
            except ToolError as exc:
                problem = str(exc)
                messages.append(_assistant_call(call_id, step))
                retry = f"Error: {exc}. Nothing was done; call a tool again with valid arguments."
                messages.append(_tool_result(call_id, retry))
                continue
            self._call_ids[len(state.history)] = call_id
            return step
        raise PlannerError(f"the chat model kept sending invalid tool calls; last: {problem}")

    def _conversation(self, state: AgentState) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": _brief(state)},
        ]
        for index, step in enumerate(state.history):
            if index not in self._results:  # only the latest can be new: we see every step
                self._results[index] = _outcome(state)
            call_id = self._call_ids.setdefault(index, f"call_{index + 1}")
            messages.append(_assistant_call(call_id, step))
            messages.append(_tool_result(call_id, self._results[index]))
        return messages

    async def _complete(
        self, messages: list[dict[str, Any]], tool_defs: list[dict[str, Any]]
    ) -> dict[str, Any]:
        body = {"model": self.model, "messages": messages, "tools": tool_defs}
        body["tool_choice"] = "auto"
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=self.timeout) as client:
                response = await client.post(
                    f"{self.base_url}/chat/completions", json=body, headers=headers
                )
        except httpx.TimeoutException:
            message = f"the chat model did not answer within {self.timeout:g}s"
            raise PlannerError(message, retryable=True) from None
        except httpx.HTTPError as exc:
            message = f"could not reach the chat model: {type(exc).__name__}: {exc}"
            raise PlannerError(self._redact(message), retryable=True) from None
        if response.status_code >= 400:
            status = response.status_code
            message = f"the chat model answered HTTP {status}: {_error_text(response)}"
            retryable = status in _RETRYABLE_STATUS or status >= 500
            raise PlannerError(self._redact(message), retryable=retryable)
        try:
            reply = response.json()["choices"][0]["message"]
        except (ValueError, LookupError, TypeError):
            raise PlannerError(
                "the chat model sent a response without choices[0].message"
            ) from None
        if not isinstance(reply, dict):
            raise PlannerError("the chat model sent a message that is not an object")
        return reply

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _brief(state: AgentState) -> str:
    if state.inputs:
        sizes = ", ".join(f"{i}: {im.width}x{im.height}" for i, im in enumerate(state.inputs))
        inputs = f"{len(state.inputs)} ({sizes})"
    else:
        inputs = "none (start with generate)"
    width, height = state.target_size()
    ratio = state.target_ratio()
    if state.aspect_ratio == "auto":
        ratio += " (auto: from input 0)" if state.inputs else " (auto: no inputs)"
    return (
        f"Instructions:\n{state.instructions}\n\n"
        f"Input images: {inputs}\n"
        f"Target: aspect ratio {ratio}, resolution {state.resolution} ({width}x{height} pixels)\n"
        f"Step budget: {state.max_steps} tool calls, finish included"
    )


def _outcome(state: AgentState) -> str:
    img = state.current
    size = f"{img.width}x{img.height} (about {nearest_ratio(*img.size)})" if img else "unknown"
    left = state.max_steps - len(state.history)
    return f"Done. The current image is {size}. Steps left: {left}."


def _assistant_call(call_id: str, step: Step) -> dict[str, Any]:
    function = {"name": step.tool, "arguments": json.dumps(step.args)}
    return {
        "role": "assistant",
        "content": step.summary,
        "tool_calls": [{"id": call_id, "type": "function", "function": function}],
    }


def _tool_result(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _first_tool_call(message: dict[str, Any]) -> tuple[str | None, str, dict[str, Any]] | None:
    """``(id, name, arguments)`` of the first tool call, or None when the model called none."""
    calls = message.get("tool_calls")
    if not calls:
        return None
    try:
        call = calls[0]
        name = call["function"]["name"]
        raw = call["function"].get("arguments") or "{}"
    except (LookupError, TypeError, AttributeError):
        raise PlannerError("the chat model sent a malformed tool call") from None
    if not isinstance(name, str):
        raise PlannerError("the chat model sent a tool call without a name")
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise PlannerError(
            f"the chat model sent invalid JSON arguments for {name}: {exc}"
        ) from None
    if not isinstance(args, dict):
        raise PlannerError(f"the chat model sent {name} arguments that are not a JSON object")
    call_id = call.get("id") if isinstance(call, dict) else None
    return (call_id if isinstance(call_id, str) and call_id else None), name, args


def _error_text(response: httpx.Response) -> str:
    """The OpenAI-style ``error.message`` when there is one, else the start of the body."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message:
            return message[:500]
    except (ValueError, AttributeError):
        pass
    return response.text[:500] or response.reason_phrase
