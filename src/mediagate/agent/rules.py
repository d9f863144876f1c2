"""The builtin planner: keyword rules turn the instructions into a fixed plan, offline.

Used by sandbox keys and when no chat model is configured. The plan always runs in this order:
make the picture (generate or compose), geometric edits, colour adjustments, reframe, resize,
captions, finish. Captions come after framing so that a crop can never cut them off, and are
drawn at the output resolution so they stay crisp.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from mediagate.agent.state import AgentState, Step, ratio_value
from mediagate.agent.tool_specs import MAX_TEXT
from mediagate.images.builtin import parse_edits

_QUOTE = re.compile(r"\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’|(?<!\w)'([^']+)'(?!\w)")
_TEXT_WORDS = re.compile(
    r"\b(write|written|text|caption(ed)?|title[ds]?|headline|heading|label(led|ed)?|say(s|ing)?"
    r"|reads?|words?|lettering|slogan|tagline|add|put|place|overlay)\b"
)
_POSITIONS = (
    ("top", re.compile(r"\b(top|upper|above|header)\b")),
    ("bottom", re.compile(r"\b(bottom|lower|below|footer|underneath)\b")),
    ("center", re.compile(r"\b(cent(er|re)(d)?|middle)\b")),
)
_TEXT_COLOURS = r"white|black|yellow|red|blue|green|orange|pink|purple|gold|silver|gr[ae]y"
_TEXT_COLOUR = re.compile(rf"\bin ({_TEXT_COLOURS})\b|\b({_TEXT_COLOURS}) (text|letters|font)\b")
_TITLE_WORDS = re.compile(r"\b(title[ds]?|headline|heading)\b")
_CLAUSE_END = re.compile(r"[.;!?\n]")

# (pattern, adjust argument, value), checked against the instructions minus quoted text.
_ADJUSTMENTS: tuple[tuple[str, str, Any], ...] = (
    (r"black[- ]and[- ]white|b&w|b/w|gr[ae]y ?scale|monochrome|desaturated?", "grayscale", True),
    (r"sepia|vintage|antique|old[- ]photo", "sepia", True),
    (r"brighte[nr]|lighte[nr]|more light", "brightness", 1.25),
    (r"darke[nr]|dimmer|moodier", "brightness", 0.75),
    (r"(less|lower|reduced?|low)[- ](the )?contrast|flatter", "contrast", 0.75),
    (r"contrast|punchy|punchier", "contrast", 1.35),
    (r"muted|less saturat\w*|washed[- ]out|subdued|faded", "saturation", 0.6),
    (
        r"vivid|vibrant|saturated|more saturation|colou?rful|boost (the )?colou?rs"
        r"|colou?rs pop|pop of colou?r",
        "saturation",
        1.4,
    ),
    (r"sharpen|sharper|crisper", "sharpness", 2.0),
    (r"invert(ed)?|negative", "invert", True),
)
_ADJUST_NAMES = {
    "grayscale": "black and white",
    "sepia": "sepia",
    "invert": "inverted",
    "brightness": ("darker", "brighter"),
    "contrast": ("flatter", "punchier"),
    "saturation": ("more muted", "more vivid"),
    "sharpness": ("softer", "sharper"),
}
_STACK_WORDS = re.compile(
    r"\b(stack(ed)?|on top of (each other|one another)|vertical(ly)?|column)\b"
)
_GRID_WORDS = re.compile(r"\b(grid|collage|mosaic|tiles?|tiled)\b")
_ROW_WORDS = re.compile(r"\b(side[- ]by[- ]side|next to|row|horizontal(ly)?|diptych)\b")

# Lower ranks survive a tight max_steps first. Framing ranks last: the runner reframes and
# resizes the result anyway, and a default resize already crops to the target ratio.
_RANK = {"finish": 0, "generate": 1, "compose": 1, "resize": 2, "overlay_text": 3}
_RANK.update({"adjust": 4, "edit": 5, "reframe": 6})


@dataclass
class Brief:
    """What the rules found in the instructions."""

    captions: list[tuple[str, str, str]] = field(default_factory=list)  # text, position, colour
    layout: str | None = None
    adjust: dict[str, Any] = field(default_factory=dict)
    edits: list[str] = field(default_factory=list)  # prompts for the edit tool
    prompt: str = ""  # the instructions without quoted text


def read_brief(instructions: str) -> Brief:
    """Parse instructions: quoted captions and their placement, layout, colour and edit words."""
    brief = Brief()
    matches = list(_QUOTE.finditer(instructions))
    unquoted = _QUOTE.sub(" ", instructions)
    lowered = unquoted.lower()
    brief.prompt = " ".join(unquoted.split()) or " ".join(instructions.split())
    if matches and _TEXT_WORDS.search(lowered):
        for n, match in enumerate(matches):
            caption = " ".join(next(g for g in match.groups() if g is not None).split())
            after_end = matches[n + 1].start() if n + 1 < len(matches) else len(instructions)
            after = instructions[match.end() : after_end]
            after = after[: m.start()] if (m := _CLAUSE_END.search(after)) else after
            before = instructions[matches[n - 1].end() if n else 0 : match.start()]
            before = _CLAUSE_END.split(before)[-1]
            placement = _placement(after.lower(), before.lower())
            brief.captions.append((caption[:MAX_TEXT], *placement))
    for name, words in (("column", _STACK_WORDS), ("grid", _GRID_WORDS), ("row", _ROW_WORDS)):
        if words.search(lowered):
            brief.layout = name
            break
    for pattern, name, value in _ADJUSTMENTS:
        if name not in brief.adjust and re.search(rf"(?<![\w-])({pattern})(?![\w-])", lowered):
            brief.adjust[name] = value
    if brief.adjust.get("sepia"):
        brief.adjust.pop("grayscale", None)  # sepia is toned grayscale already
    for op in parse_edits(lowered):
        name, _, arg = op.partition(":")
        if name == "blur":
            brief.edits.append("blur")
        elif name == "rotate" and arg != "0":
            brief.edits.append(f"rotate {arg} degrees")
        elif name == "flip":
            brief.edits.append(f"flip {arg}ly")
    return brief


def _placement(after: str, before: str) -> tuple[str, str]:
    """Position and colour words after the quote win over those before it, in the same clause.

    Without a position word, titles and headlines go at the top and anything else at the bottom.
    """
    position = next((p for text in (after, before) for p, rx in _POSITIONS if rx.search(text)), "")
    if not position:
        position = "top" if _TITLE_WORDS.search(before) else "bottom"
    colour = next((m for text in (after, before) if (m := _TEXT_COLOUR.search(text))), None)
    return position, (colour.group(1) or colour.group(2)) if colour else "white"


def build_plan(state: AgentState) -> list[Step]:
    """The whole plan for ``state``, trimmed to ``allowed_tools`` and ``max_steps``.

    With ``max_steps == 1`` the single step makes an image (generate, or resize the first input)
    and there is no room for ``finish``: the run ends at its step limit instead, and the runner
    brings the image to the exact output size. Otherwise ``finish`` is always the last step.
    """
    brief = read_brief(state.instructions)
    steps: list[Step] = []
    if not state.inputs:
        steps.append(Step("generate", {"prompt": brief.prompt}, f"Paint: {_clip(brief.prompt)}"))
    elif len(state.inputs) >= 2:
        layout = brief.layout or ("row" if len(state.inputs) <= 3 else "grid")
        if layout == "grid" and len(state.inputs) == 2:
            layout = "row"
        how = {"row": "side by side", "column": "stacked", "grid": "in a grid"}[layout]
        steps.append(
            Step(
                "compose",
                {"layout": layout, "aspect_ratio": state.target_ratio()},
                f"Put the {len(state.inputs)} images {how}",
            )
        )
    for prompt in brief.edits:
        steps.append(Step("edit", {"prompt": prompt}, prompt.capitalize()))
    if brief.adjust:
        steps.append(Step("adjust", dict(brief.adjust), _adjust_summary(brief.adjust)))
    ratio = state.target_ratio()
    width, height = state.target_size()
    steps.append(Step("reframe", {"aspect_ratio": ratio}, f"Crop to {ratio}"))
    steps.append(Step("resize", {}, f"Resize to {width}x{height}"))
    for caption, position, colour in brief.captions:
        args = {"text": caption, "position": position, "color": colour}
        steps.append(Step("overlay_text", args, f"Write {caption!r} at the {position}"))
    steps = [s for s in steps if s.tool in state.allowed_tools]

    if state.max_steps == 1:
        first = "generate" if not state.inputs else "resize"
        return [s for s in steps if s.tool == first][:1] or [Step("finish", {}, "Done")]
    keep = sorted(range(len(steps)), key=lambda i: (_RANK[steps[i].tool], i))
    kept = sorted(keep[: state.max_steps - 1])
    return [steps[i] for i in kept] + [Step("finish", {}, "Done")]


def _adjust_summary(adjust: dict[str, Any]) -> str:
    parts = []
    for name, value in adjust.items():
        label = _ADJUST_NAMES[name]
        parts.append(label if isinstance(label, str) else label[value > 1])
    return "Make it " + ", ".join(parts)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


class RuleBasedPlanner:
    """Plans once from keyword rules, then hands the steps out one at a time.

    >>> planner = RuleBasedPlanner()  # then: step = await planner.next_step(state)

    Reframe and resize steps are skipped when the image already has the target ratio or size,
    so they are never charged for nothing.
    """

    name = "builtin"

    def __init__(self) -> None:
        self._plan: list[Step] | None = None
        self._next = 0

    async def next_step(self, state: AgentState) -> Step:
        if self._plan is None:
            self._plan = build_plan(state)
        while self._next < len(self._plan):
            step = self._plan[self._next]
            self._next += 1
            if not _already_done(step, state):
                return step
        return Step("finish", {}, "Done")


def _already_done(step: Step, state: AgentState) -> bool:
    """Whether a framing step would change nothing (inputs are only rescaled on first use)."""
    if step.tool == "resize":
        return state.current is not None and state.current.size == state.target_size()
    img = state.current if state.current is not None else next(iter(state.inputs), None)
    if step.tool != "reframe" or img is None:
        return False
    return abs(math.log(img.width / img.height / ratio_value(step.args["aspect_ratio"]))) < 0.005
