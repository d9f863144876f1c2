"""The offline "sandbox" image engine: deterministic renders and prompt-driven edits.

Nothing here calls a model. Renders are abstract pictures seeded by the prompt so that tests,
demos and air-gapped installs get stable, obviously-fake output; every output carries a visible
"MEDIAGATE SANDBOX" band so it can never be mistaken for a real generation.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from mediagate.images.sizing import ASPECT_RATIOS

SANDBOX_TITLE = "MEDIAGATE SANDBOX"
MAX_SIDE = 8192
_PAINT_LONG_SIDE = 512  # painted at this size then upscaled: the picture is smooth anyway

Colour = tuple[int, int, int]

# word: hex colours. Themed words ("sunset") contribute several colours.
_COLOUR_TABLE = """
red:cd232d crimson:a01432 orange:f5871e yellow:f5d232 gold:d7a528 golden:d7a528
green:32a046 teal:148282 cyan:28c8dc blue:285ad2 navy:0f1e5a purple:7832aa violet:8c50c8
pink:f078aa magenta:d228a0 brown:784b28 white:f0f0f0 black:0f0f14 grey:808080 gray:808080
silver:bec3c8 sunset:fa8c32,eb505a,6e3282 sunrise:ffbe78,fa826e,8caae6
forest:195028,468c3c,6e5532 jungle:146428,5aa032,1e3c1e ocean:0a3c78,1e82aa,96d2dc
sea:0a3c78,1e82aa,96d2dc sky:78b4f0,dcebfa night:0a0f28,281e5a,05050f space:050514,3c145a,14286e
fire:ffc828,f05a14,96140a lava:ff7800,b41400,280a0a snow:ebf0fa,aac8e6,6e8cb4
winter:ebf0fa,aac8e6,6e8cb4 ice:d2f0fa,78bee6,3c78b4 desert:e6c88c,c88c50,a05a32
autumn:c85a1e,e6a028,783214 spring:aadc78,fab4c8,78be5a neon:ff00c8,00ffe6,7800ff
pastel:fac8d2,c8e6fa,dcfad2
"""
_COLOUR_WORDS: dict[str, list[Colour]] = {
    word: [(int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)) for h in hexes.split(",")]
    for word, hexes in (item.split(":") for item in _COLOUR_TABLE.split())
}


def _uniforms(seed: bytes, n: int) -> list[float]:
    """``n`` deterministic floats in [0, 1) derived from ``seed`` with SHA-256.

    Not a numpy RNG: numpy does not promise stable streams across releases, and renders must
    stay byte-identical across upgrades.
    """
    out: list[float] = []
    for block_no in range((n + 7) // 8):
        block = hashlib.sha256(seed + block_no.to_bytes(4, "big")).digest()
        out.extend(int.from_bytes(block[i : i + 4], "big") / 2**32 for i in range(0, 32, 4))
    return out[:n]


def _palette(prompt: str, r: list[float]) -> list[Colour]:
    """Colours named in the prompt first, topped up with seeded harmonious colours."""
    named: list[Colour] = []
    for word in re.findall(r"[a-z]+", prompt.lower()):
        hit = _COLOUR_WORDS.get(word) or (word.endswith("s") and _COLOUR_WORDS.get(word[:-1]))
        for colour in hit or []:
            if colour not in named:
                named.append(colour)
    palette = named[:4]
    base_hue = r[0]
    i = 1
    while len(palette) < 4:
        if named:
            # Variations of a named colour keep the prompt's colours dominant.
            h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in named[len(palette) % len(named)]))
            h = (h + (r[i] - 0.5) * 0.08) % 1.0
            v = min(1.0, max(0.08, v * (0.55 + 0.7 * r[i + 1])))
        else:
            h = (base_hue + (len(palette) * (0.08 + 0.25 * r[i]))) % 1.0
            s, v = 0.55 + 0.35 * r[i + 1], 0.6 + 0.35 * r[i + 2]
        rgb = colorsys.hsv_to_rgb(h, s, v)
        palette.append((round(rgb[0] * 255), round(rgb[1] * 255), round(rgb[2] * 255)))
        i += 3
    return palette


def _paint(prompt: str, width: int, height: int, index: int) -> Image.Image:
    """The unmarked picture: a warped multi-stop gradient with soft colour blobs."""
    seed = hashlib.sha256(f"{prompt}\x00{index}".encode()).digest()
    palette = np.array(_palette(prompt, _uniforms(seed + b"palette", 16)), dtype=np.float32)
    scale = min(1.0, _PAINT_LONG_SIDE / max(width, height))
    gw, gh = max(1, round(width * scale)), max(1, round(height * scale))
    long_side = max(gw, gh)
    xs = (np.arange(gw, dtype=np.float32) + 0.5)[None, :] / long_side
    ys = (np.arange(gh, dtype=np.float32) + 0.5)[:, None] / long_side

    r = _uniforms(seed + b"shapes", 40)
    theta = r[0] * 2 * np.pi
    t = xs * np.cos(theta) + ys * np.sin(theta)
    t = t + 0.07 * np.sin(2 * np.pi * (1 + 2 * r[1]) * ys + 6.3 * r[2])
    t = t + 0.07 * np.sin(2 * np.pi * (1 + 2 * r[3]) * xs + 6.3 * r[4])
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    stops = np.linspace(0.0, 1.0, len(palette), dtype=np.float32)
    img = np.stack([np.interp(t, stops, palette[:, c]) for c in range(3)], axis=-1)
    img = img.astype(np.float32)

    aspect_w, aspect_h = gw / long_side, gh / long_side
    for k in range(5):
        cx, cy, rad, strength, pick, shade = r[8 + 6 * k : 14 + 6 * k]
        d2 = (xs - cx * aspect_w) ** 2 + (ys - cy * aspect_h) ** 2
        alpha = (0.3 + 0.45 * strength) * np.exp(-d2 / (2 * (0.08 + 0.25 * rad) ** 2))
        colour = palette[int(pick * len(palette)) % len(palette)] * (0.6 + 0.8 * shade)
        img += (np.clip(colour, 0, 255) - img) * alpha[..., None]

    vignette = 1.0 - 0.35 * ((xs - aspect_w / 2) ** 2 + (ys - aspect_h / 2) ** 2)
    img *= vignette[..., None]
    out = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB")
    if out.size != (width, height):
        out = out.resize((width, height), Image.Resampling.BICUBIC)
    return out


def sandbox_band(width: int, height: int) -> tuple[int, int, int, int]:
    """The ``(left, top, right, bottom)`` box that :func:`mark_sandbox` paints over."""
    band_h = min(height, max(40, round(min(width, height) * 0.11)))
    return 0, height - band_h, width, height


def _fit_font(text: str, size: float, max_width: float) -> ImageFont.FreeTypeFont | None:
    font = ImageFont.load_default(size=max(size, 1))
    length = font.getlength(text)
    if length > max_width:
        size = size * max_width / length
        font = ImageFont.load_default(size=max(size, 1))
    if size < 6 or not isinstance(font, ImageFont.FreeTypeFont):
        return None  # too small to read; the band alone still marks the image
    return font


def mark_sandbox(img: Image.Image, text: str) -> Image.Image:
    """Return a copy of ``img`` with the sandbox band: title plus the first 60 chars of ``text``."""
    left, top, right, bottom = sandbox_band(img.width, img.height)
    band_w, band_h = right - left, bottom - top
    overlay = Image.new("RGBA", (band_w, band_h), (10, 10, 14, 190))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, 0, band_w, max(2, band_h // 20)), fill=(255, 190, 0, 255))

    pad = band_h * 0.12
    title_font = _fit_font(SANDBOX_TITLE, band_h * 0.40, band_w - 2 * pad)
    if title_font is not None:
        draw.text((pad, pad), SANDBOX_TITLE, font=title_font, fill=(255, 200, 0, 255))
    caption = " ".join(text.split())
    caption = caption if len(caption) <= 60 else caption[:57].rstrip() + "..."
    if caption:
        cap_font = _fit_font(caption, band_h * 0.24, band_w - 2 * pad)
        if cap_font is not None:
            draw.text((pad, band_h * 0.62), caption, font=cap_font, fill=(255, 255, 255, 255))

    out = img.copy() if img.mode in ("RGB", "RGBA") else img.convert("RGB")
    # Composite just the band: converting a whole 4K image to RGBA would double the cost.
    region = out.crop((left, top, right, bottom)).convert("RGBA")
    region.alpha_composite(overlay)
    out.paste(region.convert(out.mode), (left, top))
    return out


def paint(prompt: str, width: int, height: int, *, index: int = 0) -> Image.Image:
    """The picture alone, without the sandbox band (for engines that compose it further)."""
    return _paint(prompt, width, height, index)


def render(prompt: str, width: int, height: int, *, index: int = 0) -> Image.Image:
    """Render a deterministic, sandbox-marked RGB picture for ``prompt``."""
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"size must be between 1 and {MAX_SIDE} pixels per side")
    return mark_sandbox(_paint(prompt, width, height, index), prompt)


# --- edits ---------------------------------------------------------------------------------

EDIT_OPERATIONS: dict[str, tuple[str, ...]] = {
    "grayscale": ("black and white", "greyscale", "grayscale", "monochrome", "desaturate"),
    "sepia": ("sepia", "vintage", "antique"),
    "blur": ("blur", "blurry", "blurred", "soften", "softer"),
    "sharpen": ("sharpen", "sharper", "crisper"),
    "brighten": ("brighten", "brighter", "lighten", "lighter"),
    "darken": ("darken", "darker", "dim"),
    "rotate": ("rotate", "rotated"),
    "flip": ("flip", "flipped", "mirror", "mirrored", "upside down"),
    "crop": ("crop", "cropped"),
    "invert": ("invert", "inverted", "negative"),
}
"""Operation name -> trigger words/phrases recognised in edit prompts."""

_FILLER = {"it", "the", "this", "image", "picture", "photo", "by", "to", "into", "a", "an", "as"}
_PHRASES = sorted(
    ((tuple(p.split()), op) for op, phrases in EDIT_OPERATIONS.items() for p in phrases),
    key=lambda item: -len(item[0]),
)


def _rgb_only(img: Image.Image, fn: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """Apply a colour operation to RGB, leaving any alpha channel untouched."""
    if img.mode == "RGBA":
        out = fn(img.convert("RGB")).convert("RGB")
        out.putalpha(img.getchannel("A"))
        return out
    return fn(img).convert("RGB")


def _brightness(factor: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.point(lambda v: min(255, round(v * factor)))


def _sepia(im: Image.Image) -> Image.Image:
    matrix = (0.393, 0.769, 0.189, 0, 0.349, 0.686, 0.168, 0, 0.272, 0.534, 0.131, 0)
    return im.convert("RGB", matrix)


def _crop_to(img: Image.Image, rw: int, rh: int) -> Image.Image:
    w, h = img.size
    if w * rh > h * rw:
        new_w, new_h = max(1, round(h * rw / rh)), h
    else:
        new_w, new_h = w, max(1, round(w * rh / rw))
    left, top = (w - new_w) // 2, (h - new_h) // 2
    return img.crop((left, top, left + new_w, top + new_h))


def _rotate(img: Image.Image, clockwise: int) -> Image.Image:
    # Right angles go through transpose: lossless and no resampling blur.
    transposes = {90: Image.Transpose.ROTATE_270, 270: Image.Transpose.ROTATE_90}
    if clockwise == 0:
        return img
    if clockwise in transposes or clockwise == 180:
        return img.transpose(transposes.get(clockwise, Image.Transpose.ROTATE_180))
    fill = (0, 0, 0, 0) if img.mode == "RGBA" else (0, 0, 0)
    return img.rotate(-clockwise, Image.Resampling.BICUBIC, expand=True, fillcolor=fill)


# Parsers below get the token list padded with empty strings, so lookahead needs no bounds checks.


def _skip_filler(tokens: list[str], j: int) -> int:
    while tokens[j] in _FILLER:
        j += 1
    return j


def _parse_rotate(tokens: list[str], j: int) -> tuple[str, int]:
    """Parse "rotate [by] [N [degrees]] [clockwise|left|...]" starting after the verb."""
    j = _skip_filler(tokens, j)
    degrees = 90
    if tokens[j].isdigit():
        degrees = int(tokens[j]) % 360
        j += 2 if tokens[j + 1] in ("degrees", "degree", "deg") else 1
    ccw = False
    if tokens[j] in ("counter", "anti") and tokens[j + 1] == "clockwise":
        ccw, j = True, j + 2
    elif tokens[j] in ("left", "counterclockwise", "anticlockwise", "ccw"):
        ccw, j = True, j + 1
    elif tokens[j] in ("right", "clockwise", "cw"):
        j += 1
    return f"rotate:{(-degrees if ccw else degrees) % 360}", j


def _parse_flip(tokens: list[str], j: int) -> tuple[str, int]:
    k = _skip_filler(tokens, j)
    rest = tokens[k : k + 2]
    if rest[:1] in (["vertically"], ["vertical"]):
        return "flip:vertical", k + 1
    if rest == ["upside", "down"]:
        return "flip:vertical", k + 2
    if rest[:1] in (["horizontally"], ["horizontal"]):
        return "flip:horizontal", k + 1
    return "flip:horizontal", j


def _parse_crop(tokens: list[str], j: int, default: str | None) -> tuple[str | None, int]:
    k = _skip_filler(tokens, j)
    tok = tokens[k]
    if tok in ("square", "widescreen"):
        return ("crop:1:1" if tok == "square" else "crop:16:9"), k + 1
    if re.fullmatch(r"[1-9]\d{0,3}:[1-9]\d{0,3}", tok):
        return f"crop:{tok}", k + 1
    if tokens[j - 2 : j - 1] == ["square"]:
        return "crop:1:1", j
    if default is not None and default in ASPECT_RATIOS:
        return f"crop:{default}", j
    return None, j


def parse_edits(prompt: str, *, aspect_ratio: str | None = None) -> list[str]:
    """Turn an edit prompt into operation names, in the order they appear."""
    words = re.findall(r"\d+:\d+|\d+|[a-z]+", prompt.lower())
    tokens = words + [""] * 4
    ops: list[str] = []
    i = 0
    while i < len(words):
        match = next(((p, op) for p, op in _PHRASES if tuple(tokens[i : i + len(p)]) == p), None)
        if match is None:
            i += 1
            continue
        phrase, op = match
        j = i + len(phrase)
        name: str | None = op
        if phrase == ("upside", "down"):
            name = "flip:vertical"
        elif op == "rotate":
            name, j = _parse_rotate(tokens, j)
        elif op == "flip":
            name, j = _parse_flip(tokens, j)
        elif op == "crop":
            name, j = _parse_crop(tokens, j, aspect_ratio)
        if name is not None:
            ops.append(name)
        i = j
    return ops


def _apply_one(img: Image.Image, op: str) -> Image.Image:
    name, _, arg = op.partition(":")
    short = min(img.size)
    if name == "grayscale":
        return _rgb_only(img, ImageOps.grayscale)
    if name == "sepia":
        return _rgb_only(img, _sepia)
    if name == "invert":
        return _rgb_only(img, ImageOps.invert)
    if name == "brighten":
        return _rgb_only(img, _brightness(1.3))
    if name == "darken":
        return _rgb_only(img, _brightness(0.7))
    if name == "blur":
        return img.filter(ImageFilter.GaussianBlur(radius=max(1.5, short / 150)))
    if name == "sharpen":
        unsharp = ImageFilter.UnsharpMask(radius=max(1.5, short / 400), percent=160, threshold=2)
        return _rgb_only(img, lambda im: im.filter(unsharp))
    if name == "rotate":
        return _rotate(img, int(arg))
    if name == "flip":
        return ImageOps.flip(img) if arg == "vertical" else ImageOps.mirror(img)
    if name == "crop":
        rw, rh = (int(x) for x in arg.split(":"))
        return _crop_to(img, rw, rh)
    raise ValueError(f"unknown edit operation {op!r}")


def apply_edits(
    img: Image.Image, prompt: str, *, aspect_ratio: str | None = None
) -> tuple[Image.Image, list[str]]:
    """Apply the edits named in ``prompt`` in order; return the image and the ops applied."""
    ops = parse_edits(prompt, aspect_ratio=aspect_ratio)
    if img.mode in ("RGB", "RGBA"):
        out = img
    else:
        has_alpha = "A" in img.getbands() or "transparency" in img.info
        out = img.convert("RGBA" if has_alpha else "RGB")
    for op in ops:
        out = _apply_one(out, op)
    return (out if out is not img else img.copy()), ops


def edit(
    img: Image.Image, prompt: str, *, aspect_ratio: str | None = None
) -> tuple[Image.Image, list[str]]:
    """The sandbox engine's edit path: :func:`apply_edits` then the sandbox band."""
    out, ops = apply_edits(img, prompt, aspect_ratio=aspect_ratio)
    label = ("edit: " + ", ".join(ops)) if ops else "edit: no recognised operation"
    return mark_sandbox(out, f"{label} | {prompt}"), ops
