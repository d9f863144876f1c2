"""Canvas helpers for the tools: input preparation, crops and multi-image layouts."""

from __future__ import annotations

import math

from PIL import Image, ImageOps

from mediagate.agent.state import WORK_LONG_SIDE

_LANCZOS = Image.Resampling.LANCZOS
_WHITE = (255, 255, 255)


def prepared(img: Image.Image) -> Image.Image:
    """An input flattened onto white and scaled to fit the working size."""
    scale = WORK_LONG_SIDE / max(img.size)
    if scale < 1:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, _LANCZOS, reducing_gap=3.0)
    if img.mode == "RGB":
        return img
    rgba = img.convert("RGBA")
    flat = Image.new("RGB", rgba.size, _WHITE)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def crop_to_ratio(img: Image.Image, ratio: float) -> Image.Image:
    """The largest centred crop of ``img`` with ``width / height == ratio`` (to the pixel)."""
    width, height = img.size
    if width / height > ratio:
        new_w, new_h = max(1, round(height * ratio)), height
    else:
        new_w, new_h = width, max(1, round(width / ratio))
    left, top = (width - new_w) // 2, (height - new_h) // 2
    return img.crop((left, top, left + new_w, top + new_h))


def default_gap(long_side: float) -> int:
    return max(2, round(long_side * 0.01))


def grid_shape(count: int) -> tuple[int, int]:
    """``(columns, rows)`` of the most square grid holding ``count`` cells."""
    cols = math.ceil(math.sqrt(count))
    return cols, math.ceil(count / cols)


def strip(images: list[Image.Image], *, horizontal: bool, gutter: int | None) -> Image.Image:
    """Images in a row at one height (or a column at one width), white gutters between."""
    # "along" is each image's length per pixel of the shared cross dimension.
    along = [w / h if horizontal else h / w for w, h in (im.size for im in images)]
    cross = min(min(im.height if horizontal else im.width for im in images), WORK_LONG_SIDE)
    gap = gutter if gutter is not None else default_gap(min(WORK_LONG_SIDE, cross * sum(along)))
    gaps = gap * (len(images) - 1)
    cross = max(1, min(cross, math.floor((WORK_LONG_SIDE - gaps) / sum(along))))
    lengths = [max(1, round(cross * a)) for a in along]
    return _paste_strip(images, lengths, cross, gap, horizontal)


def grid(images: list[Image.Image], gutter: int | None) -> Image.Image:
    """Equal cells (the median input ratio), each image centre-cropped to fill its cell."""
    cols, rows = grid_shape(len(images))
    ratio = sorted(im.width / im.height for im in images)[len(images) // 2]
    gap = gutter if gutter is not None else default_gap(WORK_LONG_SIDE)
    cell_w = min(
        sorted(im.width for im in images)[len(images) // 2],
        (WORK_LONG_SIDE - gap * (cols - 1)) / cols,
        (WORK_LONG_SIDE - gap * (rows - 1)) / rows * ratio,
    )
    cell = (max(1, math.floor(cell_w)), max(1, math.floor(cell_w / ratio)))
    size = (cols * cell[0] + gap * (cols - 1), rows * cell[1] + gap * (rows - 1))
    return _paste_grid(images, size, cell, gap, cols)


def framed(
    images: list[Image.Image], layout: str, size: tuple[int, int], gutter: int | None
) -> Image.Image:
    """The layout filling exactly ``size``: cells keep the images' relative proportions and
    each image is centre-cropped only as much as the frame requires."""
    width, height = size
    gap = gutter if gutter is not None else default_gap(max(size))
    count = len(images)
    if layout == "grid":
        cols, rows = grid_shape(count)
        cell = (
            max(1, (width - gap * (cols - 1)) // cols),
            max(1, (height - gap * (rows - 1)) // rows),
        )
        return _paste_grid(images, size, cell, gap, cols)
    horizontal = layout == "row"
    along = [w / h if horizontal else h / w for w, h in (im.size for im in images)]
    room = max(count, (width if horizontal else height) - gap * (count - 1))
    bounds = [round(room * sum(along[:k]) / sum(along)) for k in range(count + 1)]
    lengths = [max(1, b - a) for a, b in zip(bounds, bounds[1:], strict=False)]
    return _paste_strip(images, lengths, height if horizontal else width, gap, horizontal)


def _paste_strip(
    images: list[Image.Image], lengths: list[int], cross: int, gap: int, horizontal: bool
) -> Image.Image:
    total = sum(lengths) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (total, cross) if horizontal else (cross, total), _WHITE)
    offset = 0
    for im, length in zip(images, lengths, strict=True):
        cell = (length, cross) if horizontal else (cross, length)
        canvas.paste(ImageOps.fit(im, cell, _LANCZOS), (offset, 0) if horizontal else (0, offset))
        offset += length + gap
    return canvas


def _paste_grid(
    images: list[Image.Image], size: tuple[int, int], cell: tuple[int, int], gap: int, cols: int
) -> Image.Image:
    canvas = Image.new("RGB", size, _WHITE)
    rows = math.ceil(len(images) / cols)
    # Spread any rounding slack evenly around the block of cells.
    left = (size[0] - cols * cell[0] - gap * (cols - 1)) // 2
    top = (size[1] - rows * cell[1] - gap * (rows - 1)) // 2
    for n, im in enumerate(images):
        row, col = divmod(n, cols)
        in_row = min(cols, len(images) - row * cols)
        indent = (cols - in_row) * (cell[0] + gap) // 2  # centre a short last row
        xy = (left + indent + col * (cell[0] + gap), top + row * (cell[1] + gap))
        canvas.paste(ImageOps.fit(im, cell, _LANCZOS), xy)
    return canvas
