"""What each tool does and accepts, as data: JSON schemas for the LLM, defaults for summaries.

:mod:`mediagate.agent.tools` enforces the same limits; keep the two in step.
"""

from __future__ import annotations

import math
from typing import Any

from mediagate.agent.errors import ToolError
from mediagate.agent.state import AGENT_RATIOS, TOOLS, AgentState

LAYOUTS = ("row", "column", "grid")
POSITIONS = ("top", "center", "bottom")
ADJUST_FACTORS = ("brightness", "contrast", "saturation", "sharpness")
ADJUST_FLAGS = ("grayscale", "sepia", "invert")
FACTOR_RANGE = (0.0, 4.0)
TEXT_SIZE_RANGE = (0.02, 0.3)
LONG_SIDE_RANGE = (64, 4096)
MAX_PROMPT = 2000
MAX_TEXT = 200
MAX_COMPOSE = 16

_RATIO = {"type": "string", "enum": list(AGENT_RATIOS)}
_FACTOR = {"type": "number", "minimum": FACTOR_RANGE[0], "maximum": FACTOR_RANGE[1]}

_SPECS: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "generate": (
        "Paint a new image from a text prompt at the target aspect ratio (or the one given). "
        "Use it when there are no input images or the brief asks for a new picture.",
        {"prompt": {"type": "string", "maxLength": MAX_PROMPT}, "aspect_ratio": _RATIO},
        ["prompt"],
    ),
    "edit": (
        "Edit an image with an instruction (e.g. 'rotate 90 degrees', 'flip horizontally', "
        "'blur', 'sepia'). Works on the current image, or on the input at input_index (0-based).",
        {
            "prompt": {"type": "string", "maxLength": MAX_PROMPT},
            "input_index": {"type": "integer", "minimum": 0},
        },
        ["prompt"],
    ),
    "compose": (
        "Combine several images into one: 'row' (side by side), 'column' (stacked) or 'grid'. "
        "images lists input indexes (0-based, default all inputs); include_current puts the "
        "current image first. Heights (row) or widths (column) are made uniform. With "
        "aspect_ratio the composition fills that ratio exactly, each image cropped a little "
        "instead of the whole composition being cropped later.",
        {
            "layout": {"type": "string", "enum": list(LAYOUTS)},
            "images": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0},
                "maxItems": MAX_COMPOSE,
            },
            "include_current": {"type": "boolean"},
            "gutter": {"type": "integer", "minimum": 0, "maximum": 256},
            "aspect_ratio": _RATIO,
        },
        [],
    ),
    "reframe": (
        "Centre-crop the current image to an aspect ratio (default: the target ratio).",
        {"aspect_ratio": _RATIO},
        [],
    ),
    "resize": (
        "Resize the current image: to the exact target output size (default; crops the least "
        "needed if the ratio differs), or to a given long side keeping its ratio.",
        {
            "long_side": {
                "type": "integer",
                "minimum": LONG_SIDE_RANGE[0],
                "maximum": LONG_SIDE_RANGE[1],
            }
        },
        [],
    ),
    "adjust": (
        "Adjust colours and tone. Factors: 1.0 = unchanged, <1 less, >1 more. Flags turn the "
        "image grayscale (black and white), sepia, or inverted. Give at least one.",
        {
            **{name: _FACTOR for name in ADJUST_FACTORS},
            **{name: {"type": "boolean"} for name in ADJUST_FLAGS},
        },
        [],
    ),
    "overlay_text": (
        "Write text on the current image, centred horizontally, outlined so it reads on any "
        "background. size is the text height as a fraction of the image's short side.",
        {
            "text": {"type": "string", "maxLength": MAX_TEXT},
            "position": {"type": "string", "enum": list(POSITIONS)},
            "size": {
                "type": "number",
                "minimum": TEXT_SIZE_RANGE[0],
                "maximum": TEXT_SIZE_RANGE[1],
            },
            "color": {"type": "string", "description": "CSS colour, e.g. 'white' or '#ffcc00'"},
        },
        ["text"],
    ),
    "finish": ("Stop: the current image is the result.", {}, []),
}
assert tuple(_SPECS) == TOOLS


def parameter_names(tool: str) -> frozenset[str]:
    """The argument names ``tool`` accepts."""
    return frozenset(_SPECS[tool][1])


def tool_description(tool: str) -> str:
    return _SPECS[tool][0]


def openai_tools(allowed: frozenset[str]) -> list[dict[str, Any]]:
    """Function definitions in the OpenAI chat-completions ``tools`` format, in TOOLS order."""
    out: list[dict[str, Any]] = []
    for tool in TOOLS:
        if tool not in allowed:
            continue
        description, properties, required = _SPECS[tool]
        parameters = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
        out.append(
            {
                "type": "function",
                "function": {"name": tool, "description": description, "parameters": parameters},
            }
        )
    return out


def default_summary(tool: str, args: dict[str, Any]) -> str:
    """A short progress line for a step whose planner gave none."""
    if not args:
        return tool.replace("_", " ").capitalize()
    shown = ", ".join(f"{key}={_short(value)}" for key, value in args.items())
    return f"{tool.replace('_', ' ').capitalize()} ({shown})"[:120]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class ArgReader:
    """Typed access to raw tool arguments, raising :class:`ToolError` with the tool's name."""

    def __init__(self, tool: str, raw: dict[str, Any]) -> None:
        self.tool, self.raw = tool, raw

    def error(self, message: str) -> ToolError:
        return ToolError(f"{self.tool}: {message}")

    def string(self, key: str, max_len: int, *, required: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{key} must be a non-empty string")
        if len(value) > max_len:
            raise self.error(f"{key} is longer than {max_len} characters")
        return value.strip()

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw.get(key, default)
        if value not in choices:
            raise self.error(f"{key} must be one of {', '.join(choices)}, not {value!r}")
        return str(value)

    def number(self, key: str, low: float, high: float) -> float | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"{key} must be a number")
        if not (low <= value <= high and math.isfinite(value)):
            raise self.error(f"{key} must be between {low} and {high}, not {value}")
        return float(value)

    def integer(self, key: str, low: int, high: int) -> int | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{key} must be an integer")
        if not low <= value <= high:
            raise self.error(f"{key} must be between {low} and {high}, not {value}")
        return value

    def flag(self, key: str) -> bool:
        value = self.raw.get(key, False)
        if not isinstance(value, bool):
            raise self.error(f"{key} must be true or false")
        return value

    def input_index(self, key: str, value: Any, state: AgentState) -> int:
        count = len(state.inputs)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < count:
            have = f"0 to {count - 1}" if count else "none: there are no input images"
            raise self.error(f"{key} {value!r} is not an input index ({have})")
        return value
