"""What an agent run knows: the brief, the inputs, the target and the steps taken so far."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from mediagate.images.sizing import ASPECT_RATIOS, output_size

TOOLS = ("generate", "edit", "compose", "reframe", "resize", "adjust", "overlay_text", "finish")

AGENT_RATIOS = ("9:16", "2:3", "3:4", "4:5", "1:1", "5:4", "4:3", "3:2", "16:9")
"""The aspect ratios a run may target (``auto`` resolves to one of these)."""
RESOLUTIONS = ("2K", "4K")
MAX_STEPS = 30
INSTRUCTIONS_LENGTH = (3, 10_000)
WORK_LONG_SIDE = 2048
"""Intermediate images stay at or below this long side; only the final resize goes beyond."""


@dataclass
class Step:
    """One tool call: ``Step("adjust", {"grayscale": True}, "Make it black and white")``."""

    tool: str
    args: dict[str, Any]
    summary: str


@dataclass
class AgentState:
    """The run's brief and progress. ``current`` is the latest image (None before the first).

    >>> state = AgentState("a red fox", [], "16:9", "2K", max_steps=5)
    >>> state.target_size()
    (2048, 1152)

    ``finish`` is always allowed, whatever ``allowed_tools`` says: every run must be able to end.
    """

    instructions: str
    inputs: list[Image.Image]
    aspect_ratio: str
    resolution: str
    max_steps: int
    allowed_tools: frozenset[str] = frozenset(TOOLS)
    current: Image.Image | None = None
    history: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        low, high = INSTRUCTIONS_LENGTH
        if not low <= len(self.instructions.strip()) <= high:
            raise ValueError(f"instructions must be {low} to {high} characters")
        if self.aspect_ratio != "auto" and self.aspect_ratio not in AGENT_RATIOS:
            allowed = ", ".join(("auto", *AGENT_RATIOS))
            raise ValueError(f"unknown aspect ratio {self.aspect_ratio!r} (allowed: {allowed})")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"unknown resolution {self.resolution!r} (allowed: 2K, 4K)")
        if not 1 <= self.max_steps <= MAX_STEPS:
            raise ValueError(f"max_steps must be between 1 and {MAX_STEPS}")
        unknown = set(self.allowed_tools) - set(TOOLS)
        if unknown:
            raise ValueError(f"unknown tool(s): {', '.join(sorted(unknown))}")
        self.allowed_tools = frozenset(self.allowed_tools) | {"finish"}
        if not self.inputs and "generate" not in self.allowed_tools:
            raise ValueError("without input images the agent needs the generate tool")

    def target_ratio(self) -> str:
        """The output's aspect ratio; ``auto`` takes the first input's nearest ratio, else 1:1."""
        if self.aspect_ratio != "auto":
            return self.aspect_ratio
        if not self.inputs:
            return "1:1"
        return nearest_ratio(*self.inputs[0].size)

    def target_size(self) -> tuple[int, int]:
        """``(width, height)`` of the final output: long side 2048 for 2K, 4096 for 4K."""
        return output_size(self.target_ratio(), self.resolution)

    def work_size(self) -> tuple[int, int]:
        """The target size scaled down to :data:`WORK_LONG_SIDE`, for intermediate images."""
        width, height = self.target_size()
        scale = min(1.0, WORK_LONG_SIDE / max(width, height))
        return max(1, round(width * scale)), max(1, round(height * scale))


def nearest_ratio(width: int, height: int) -> str:
    """The agent ratio closest to ``width:height`` (compared in log space, like ``aspect_of``)."""
    if width <= 0 or height <= 0:
        raise ValueError("width and height must be positive")
    target = math.log(width / height)
    return min(AGENT_RATIOS, key=lambda name: abs(math.log(ratio_value(name)) - target))


def ratio_value(name: str) -> float:
    """``"16:9"`` -> 1.777…"""
    rw, rh = ASPECT_RATIOS[name]
    return rw / rh
