"""The agent's tools: pure, synchronous, deterministic pixel work on the CPU.

Every tool reads its image from the state (``current``, else the first input) and returns a new
RGB image; nothing here mutates the state. Inputs are flattened onto white and scaled down to
:data:`~mediagate.agent.state.WORK_LONG_SIDE` on first use, so only the final ``resize`` works at
4K. :func:`validate` checks a step without touching pixels, which lets a planner hand a bad call
back to the model before it costs a step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image, ImageColor, ImageEnhance, ImageOps

from mediagate.agent import canvas, text
from mediagate.agent.errors import ToolError
from mediagate.agent.state import AGENT_RATIOS, TOOLS, WORK_LONG_SIDE, AgentState, Step, ratio_value
from mediagate.agent.tool_specs import (
    ADJUST_FACTORS,
    ADJUST_FLAGS,
    FACTOR_RANGE,
    LAYOUTS,
    LONG_SIDE_RANGE,
    MAX_COMPOSE,
    MAX_PROMPT,
    MAX_TEXT,
    POSITIONS,
    TEXT_SIZE_RANGE,
    ArgReader,
    parameter_names,
)
from mediagate.images.builtin import EDIT_OPERATIONS, apply_edits, parse_edits, render
from mediagate.images.sizing import output_size

__all__ = ["ToolError", "apply", "finalize", "validate"]

_LANCZOS = Image.Resampling.LANCZOS


def apply(step: Step, state: AgentState) -> Image.Image:
    """Run ``step`` against ``state`` and return the new image (see :func:`finalize`)."""
    args = validate(step, state)
    return _IMPLS[step.tool](args, state)


def validate(step: Step, state: AgentState) -> dict[str, Any]:
    """Check ``step`` against the state; return its arguments with defaults filled in."""
    if step.tool not in TOOLS:
        raise ToolError(f"unknown tool {step.tool!r} (tools: {', '.join(TOOLS)})")
    if step.tool not in state.allowed_tools:
        raise ToolError(f"tool {step.tool!r} is not allowed in this run")
    if not isinstance(step.args, dict):
        raise ToolError(f"{step.tool}: arguments must be an object")
    unknown = sorted(set(step.args) - parameter_names(step.tool))
    if unknown:
        known = ", ".join(sorted(parameter_names(step.tool))) or "none"
        raise ToolError(
            f"{step.tool}: unknown argument(s) {', '.join(unknown)} (accepted: {known})"
        )
    return _CHECKS[step.tool](ArgReader(step.tool, step.args), state)


def finalize(state: AgentState) -> Image.Image:
    """The run's result at exactly ``state.target_size()``: centre-cropped and resized if needed."""
    img = _finish({}, state)
    size = state.target_size()
    return img if img.size == size else ImageOps.fit(img, size, _LANCZOS)


# --- images the tools start from ----------------------------------------------------------------


def _base(tool: str, state: AgentState) -> Image.Image:
    if state.current is not None:
        return state.current
    if state.inputs:
        return canvas.prepared(state.inputs[0])
    raise ToolError(f"{tool}: there is no image yet; call generate first")


def _work_size(ratio: str, state: AgentState) -> tuple[int, int]:
    width, height = output_size(ratio, state.resolution)
    scale = min(1.0, WORK_LONG_SIDE / max(width, height))
    return round(width * scale), round(height * scale)


# --- the tools: a check (no pixels) and an implementation each ----------------------------------


def _check_generate(a: ArgReader, state: AgentState) -> dict[str, Any]:
    ratio = a.choice("aspect_ratio", AGENT_RATIOS, state.target_ratio())
    return {"prompt": a.string("prompt", MAX_PROMPT, required=True), "aspect_ratio": ratio}


def _generate(args: dict[str, Any], state: AgentState) -> Image.Image:
    return render(args["prompt"], *_work_size(args["aspect_ratio"], state))


def _check_edit(a: ArgReader, state: AgentState) -> dict[str, Any]:
    prompt = a.string("prompt", MAX_PROMPT, required=True)
    assert prompt is not None
    if not parse_edits(prompt, aspect_ratio=state.target_ratio()):
        known = ", ".join(EDIT_OPERATIONS)
        raise a.error(f"no supported edit in {prompt!r} (the editor understands: {known})")
    index = a.raw.get("input_index")
    if index is not None:
        index = a.input_index("input_index", index, state)
    elif state.current is None and not state.inputs:
        raise a.error("there is no image to edit yet; call generate first")
    return {"prompt": prompt, "input_index": index}


def _edit(args: dict[str, Any], state: AgentState) -> Image.Image:
    index = args["input_index"]
    img = _base("edit", state) if index is None else canvas.prepared(state.inputs[index])
    out, _ops = apply_edits(img, args["prompt"], aspect_ratio=state.target_ratio())
    return out.convert("RGB")


def _check_compose(a: ArgReader, state: AgentState) -> dict[str, Any]:
    raw = a.raw.get("images")
    if raw is not None and not isinstance(raw, list):
        raise a.error("images must be a list of input indexes")
    indexes = list(range(len(state.inputs))) if raw is None else raw
    indexes = [a.input_index("images", i, state) for i in indexes]
    include_current = a.flag("include_current")
    if include_current and state.current is None:
        raise a.error("include_current is true but there is no current image yet")
    count = len(indexes) + include_current
    if not 2 <= count <= MAX_COMPOSE:
        raise a.error(f"needs 2 to {MAX_COMPOSE} images, got {count}")
    layout = a.choice("layout", LAYOUTS, "row" if count <= 3 else "grid")
    gutter = a.integer("gutter", 0, 256)
    ratio = a.raw.get("aspect_ratio")
    ratio = None if ratio is None else a.choice("aspect_ratio", AGENT_RATIOS, "")
    return {
        "aspect_ratio": ratio,
        "images": indexes,
        "include_current": include_current,
        "layout": layout,
        "gutter": gutter,
    }


def _compose(args: dict[str, Any], state: AgentState) -> Image.Image:
    images = [canvas.prepared(state.inputs[i]) for i in args["images"]]
    if args["include_current"] and state.current is not None:
        images.insert(0, state.current)
    if args["aspect_ratio"] is not None:
        size = _work_size(args["aspect_ratio"], state)
        return canvas.framed(images, args["layout"], size, args["gutter"])
    if args["layout"] == "grid":
        return canvas.grid(images, args["gutter"])
    return canvas.strip(images, horizontal=args["layout"] == "row", gutter=args["gutter"])


def _check_reframe(a: ArgReader, state: AgentState) -> dict[str, Any]:
    return {"aspect_ratio": a.choice("aspect_ratio", AGENT_RATIOS, state.target_ratio())}


def _reframe(args: dict[str, Any], state: AgentState) -> Image.Image:
    return canvas.crop_to_ratio(_base("reframe", state), ratio_value(args["aspect_ratio"]))


def _check_resize(a: ArgReader, state: AgentState) -> dict[str, Any]:
    return {"long_side": a.integer("long_side", *LONG_SIDE_RANGE)}


def _resize(args: dict[str, Any], state: AgentState) -> Image.Image:
    img = _base("resize", state)
    long_side = args["long_side"]
    if long_side is None:
        size = state.target_size()
        return img if img.size == size else ImageOps.fit(img, size, _LANCZOS)
    scale = long_side / max(img.size)
    return img.resize(
        (max(1, round(img.width * scale)), max(1, round(img.height * scale))), _LANCZOS
    )


def _check_adjust(a: ArgReader, state: AgentState) -> dict[str, Any]:
    args: dict[str, Any] = {name: a.number(name, *FACTOR_RANGE) for name in ADJUST_FACTORS}
    args.update({name: a.flag(name) for name in ADJUST_FLAGS})
    if not any(args[n] is not None for n in ADJUST_FACTORS) and not any(
        args[n] for n in ADJUST_FLAGS
    ):
        raise a.error(f"give at least one of {', '.join(ADJUST_FACTORS + ADJUST_FLAGS)}")
    return args


_ENHANCERS: dict[str, Callable[[Image.Image, float], Image.Image]] = {
    "brightness": lambda img, f: ImageEnhance.Brightness(img).enhance(f),
    "contrast": lambda img, f: ImageEnhance.Contrast(img).enhance(f),
    "saturation": lambda img, f: ImageEnhance.Color(img).enhance(f),
    "sharpness": lambda img, f: ImageEnhance.Sharpness(img).enhance(f),
}


def _adjust(args: dict[str, Any], state: AgentState) -> Image.Image:
    img = _base("adjust", state)
    for name in ADJUST_FACTORS:
        if args[name] is not None:
            img = _ENHANCERS[name](img, args[name])
    if args["sepia"]:
        img = ImageOps.colorize(
            ImageOps.grayscale(img), (40, 26, 13), (255, 240, 210), mid=(166, 123, 82)
        )
    elif args["grayscale"]:
        img = ImageOps.grayscale(img).convert("RGB")
    if args["invert"]:
        img = ImageOps.invert(img)
    return img


def _check_overlay_text(a: ArgReader, state: AgentState) -> dict[str, Any]:
    color = a.raw.get("color", "white")
    try:
        rgb = ImageColor.getrgb(color) if isinstance(color, str) else None
    except ValueError:
        rgb = None
    if rgb is None:
        raise a.error(f"color {color!r} is not a CSS colour name or #rrggbb")
    size = a.number("size", *TEXT_SIZE_RANGE)
    return {
        "text": a.string("text", MAX_TEXT, required=True),
        "position": a.choice("position", POSITIONS, "bottom"),
        "size": 0.08 if size is None else size,
        "color": rgb[:3],
    }


def _overlay_text(args: dict[str, Any], state: AgentState) -> Image.Image:
    img = _base("overlay_text", state)
    return text.draw_caption(img, args["text"], args["position"], args["size"], args["color"])


def _finish(args: dict[str, Any], state: AgentState) -> Image.Image:
    # Also the fallback result when a planner stops before making anything.
    if state.current is None and not state.inputs:
        return render(state.instructions, *state.work_size())
    return _base("finish", state)


def _check_nothing(a: ArgReader, state: AgentState) -> dict[str, Any]:
    return {}


_CHECKS: dict[str, Callable[[ArgReader, AgentState], dict[str, Any]]] = {
    "generate": _check_generate,
    "edit": _check_edit,
    "compose": _check_compose,
    "reframe": _check_reframe,
    "resize": _check_resize,
    "adjust": _check_adjust,
    "overlay_text": _check_overlay_text,
    "finish": _check_nothing,
}
_IMPLS: dict[str, Callable[[dict[str, Any], AgentState], Image.Image]] = {
    "generate": _generate,
    "edit": _edit,
    "compose": _compose,
    "reframe": _reframe,
    "resize": _resize,
    "adjust": _adjust,
    "overlay_text": _overlay_text,
    "finish": _finish,
}
