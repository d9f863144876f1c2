"""Captions drawn onto images: sized to the picture, wrapped to fit, outlined to read anywhere."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageFont

_MIN_PX = 8
_WIDTH_SHARE = 0.9  # of the image width a line may take
_MARGIN_SHARE = 0.05  # of the image height kept clear above/below top and bottom captions


def draw_caption(
    img: Image.Image,
    text: str,
    position: str,
    size: float,
    color: tuple[int, int, int],
) -> Image.Image:
    """Return a copy of ``img`` with ``text`` centred at ``position`` (top, center, bottom).

    ``size`` is the glyph height as a fraction of the short side; long text wraps and then
    shrinks to fit. A dark outline plus a soft drop shadow keep light text readable on light
    backgrounds (and the outline keeps dark text readable on dark ones).
    """
    width, height = img.size
    font, lines = _fit(text, width, max(_MIN_PX, round(min(width, height) * size)))
    px = int(font.size)
    joined = "\n".join(lines)
    stroke = max(1, round(px / 12))
    shadow = max(1, round(px / 16))
    spacing = round(px * 0.25)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.multiline_textbbox(
        (0, 0), joined, font=font, align="center", spacing=spacing, stroke_width=stroke
    )
    text_w, text_h = right - left, bottom - top
    margin = round(height * _MARGIN_SHARE)
    x = (width - text_w) / 2 - left
    y = {
        "top": margin - top,
        "center": (height - text_h) / 2 - top,
        "bottom": height - margin - text_h - top,
    }[position]

    # Composite only the caption's box: converting a whole 4K image to RGBA doubles the cost.
    box = (
        max(0, math.floor(x + left) - 2),
        max(0, math.floor(y + top) - 2),
        min(width, math.ceil(x + right + shadow) + 2),
        min(height, math.ceil(y + bottom + shadow) + 2),
    )
    if box[2] <= box[0] or box[3] <= box[1]:
        return img.copy()
    region = img.crop(box).convert("RGBA")
    layer = Image.new("RGBA", region.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    ox, oy = x - box[0], y - box[1]
    for offset, fill, outline in (
        (shadow, (0, 0, 0, 140), (0, 0, 0, 140)),
        (0, (*color, 255), (0, 0, 0, 255)),
    ):
        draw.multiline_text(
            (ox + offset, oy + offset),
            joined,
            fill=fill,
            font=font,
            align="center",
            spacing=spacing,
            stroke_width=stroke,
            stroke_fill=outline,
        )
    region.alpha_composite(layer)
    out = img.copy()
    out.paste(region.convert(img.mode), box[:2])
    return out


def _fit(text: str, width: int, px: int) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """The largest font up to ``px`` whose wrapped lines fit the width, and those lines."""
    max_w = width * _WIDTH_SHARE
    while True:
        font = ImageFont.load_default(size=px)
        if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
            raise RuntimeError("overlay_text needs Pillow with FreeType support")
        lines = _wrap(text, font, max_w)
        widest = max(font.getlength(line) for line in lines)
        if widest <= max_w or px <= _MIN_PX:
            return font, lines
        px = max(_MIN_PX, min(px - 1, math.floor(px * max_w / widest)))


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_w: float) -> list[str]:
    """Greedy word wrap; explicit newlines are kept; a word longer than a line stays whole."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if line and font.getlength(candidate) > max_w:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines
