"""Safe intake of untrusted image bytes: sniff, bound, decode, normalise, re-encode.

Every image that enters the server (uploads, fetched URLs, provider outputs) goes through
:func:`open_image` so that format allowlisting, pixel limits and EXIF handling live in one place.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps

RejectReason = Literal["unsupported_format", "too_many_pixels", "corrupt", "empty"]

ALLOWED_FORMATS: dict[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}

_MIME_TO_FORMAT = {mime: fmt for fmt, mime in ALLOWED_FORMATS.items()}
_ENCODE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class ImageRejected(ValueError):
    """An incoming image was refused; ``reason`` is a stable machine-readable code."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason: RejectReason = reason
        self.message = message


def sniff_mime(data: bytes) -> str | None:
    """Identify an image type from its magic bytes alone.

    Also recognises a few formats we never accept (BMP, TIFF) so that callers can give a
    precise "unsupported" message; check the result against :data:`ALLOWED_FORMATS`.
    """
    head = bytes(data[:16])
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:2] == b"BM":
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    return None


def _normalise_allowed(allowed: set[str] | None) -> set[str]:
    """Accept Pillow format names ("PNG") or MIME types ("image/png") in ``allowed``."""
    if allowed is None:
        return set(ALLOWED_FORMATS)
    out: set[str] = set()
    for item in allowed:
        fmt = _MIME_TO_FORMAT.get(item.lower(), item.upper())
        if fmt == "JPG":
            fmt = "JPEG"
        if fmt in ALLOWED_FORMATS:
            out.add(fmt)
    return out


def _webp_declared_size(data: bytes) -> tuple[int, int] | None:
    """Read the canvas size from a WebP header.

    libwebp allocates the whole canvas when its decoder is created (inside ``Image.open``),
    so the size has to be checked before Pillow ever sees the data.
    """
    chunk = data[12:16]
    try:
        if chunk == b"VP8X":
            w = 1 + int.from_bytes(data[24:27], "little")
            h = 1 + int.from_bytes(data[27:30], "little")
            return w, h
        if chunk == b"VP8L" and data[20] == 0x2F:
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            w = int.from_bytes(data[26:28], "little") & 0x3FFF
            h = int.from_bytes(data[28:30], "little") & 0x3FFF
            return w, h
    except IndexError:
        return None
    return None


def _too_many(width: int, height: int, max_pixels: int) -> ImageRejected:
    return ImageRejected(
        "too_many_pixels",
        f"image is {width}x{height} ({width * height} pixels); the limit is {max_pixels} pixels",
    )


def _to_rgb_or_rgba(img: Image.Image) -> Image.Image:
    """Convert any decoded mode to RGB, or RGBA when the image carries transparency."""
    if img.mode in ("RGB", "RGBA"):
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit greyscale PNG: a plain convert() clips everything above 255 to white.
        arr = np.asarray(img, dtype=np.uint32) >> 8
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").convert("RGB")
    has_alpha = "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info
    return img.convert("RGBA" if has_alpha else "RGB")


def open_image(
    source: bytes | Path,
    *,
    max_pixels: int = 40_000_000,
    allowed: set[str] | None = None,
    max_side: int | None = None,
) -> Image.Image:
    """Decode untrusted bytes (or a file) into a fully loaded RGB/RGBA image, or raise
    :class:`ImageRejected`.

    ``allowed`` holds Pillow format names (or MIME types) and defaults to all of
    :data:`ALLOWED_FORMATS`. The pixel count is checked from the header before any pixel data
    is decoded, so decompression bombs are refused cheaply. Pillow's own bomb guard still
    applies as an outer ceiling (about 179 megapixels) and is reported as ``too_many_pixels``.
    A file is decoded straight from disk (its bytes never sit in memory), and with
    ``max_side`` a large JPEG is decoded at a reduced scale, so big uploads stay cheap.
    """
    head = _head(source)
    if not head:
        raise ImageRejected("empty", "no image data")
    mime = sniff_mime(head)
    fmt = _MIME_TO_FORMAT.get(mime or "")
    permitted = _normalise_allowed(allowed)
    if fmt is None or fmt not in permitted:
        kind = mime or "unrecognised data"
        accepted = ", ".join(sorted(ALLOWED_FORMATS[f] for f in permitted)) or "none"
        raise ImageRejected("unsupported_format", f"{kind} is not accepted (allowed: {accepted})")

    declared = _webp_declared_size(head) if fmt == "WEBP" else None
    if declared is not None and declared[0] * declared[1] > max_pixels:
        raise _too_many(declared[0], declared[1], max_pixels)

    try:
        # Our limit is the one that matters; Pillow's warning would only be noise (and an error
        # under `-W error`), so silence it while we are in control of the size check. The filter
        # change is process-wide for a moment, which at worst hides an unrelated bomb warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            fp = source if isinstance(source, Path) else io.BytesIO(source)
            src = Image.open(fp, formats=[fmt])
            img: Image.Image = src
            try:
                width, height = src.size
                if width <= 0 or height <= 0:
                    raise ImageRejected("corrupt", "image declares an empty canvas")
                if width * height > max_pixels:
                    raise _too_many(width, height, max_pixels)
                if fmt == "GIF":
                    src.seek(0)
                if fmt == "JPEG" and max_side is not None:
                    # Decode a big JPEG at 1/2, 1/4 or 1/8 scale (never below half of
                    # max_side): a fraction of the memory, and it is scaled down anyway.
                    src.draft(src.mode, (max_side // 2, max_side // 2))
                src.load()
                img = _to_rgb_or_rgba(src)
                # Pillow closes a file it opened itself once a single-frame image is loaded;
                # otherwise detach the pixels from the source before closing it.
                if img is src and (not isinstance(source, Path) or getattr(src, "n_frames", 1) > 1):
                    img = src.copy()
            finally:
                if img is not src:
                    src.close()
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_many_pixels", f"image is too large: {exc}") from None
    except MemoryError:
        raise ImageRejected("too_many_pixels", "image is too large to decode") from None
    except Exception as exc:  # Pillow raises a zoo of types for malformed input
        raise ImageRejected("corrupt", f"could not decode {fmt} image: {exc}") from None

    # Broken EXIF is metadata damage, not pixel damage: keep the image untransposed.
    with contextlib.suppress(Exception):
        img = ImageOps.exif_transpose(img)
    # EXIF is dropped on purpose: it can carry GPS positions and camera serial numbers.
    img.info.pop("exif", None)
    img.info.pop("xmp", None)
    if max_side is not None and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img


def _head(source: bytes | Path, size: int = 64 * 1024) -> bytes:
    if isinstance(source, Path):
        with source.open("rb") as fh:
            return fh.read(size)
    return source[:size]


def encode(img: Image.Image, fmt: str = "PNG", quality: int = 90, *, fast: bool = False) -> bytes:
    """Encode ``img`` as PNG, JPEG or WEBP without EXIF metadata."""
    fmt = fmt.upper()
    if fmt == "JPG":
        fmt = "JPEG"
    if fmt not in _ENCODE_FORMATS:
        raise ValueError(f"cannot encode as {fmt!r}; use one of {sorted(_ENCODE_FORMATS)}")
    if fmt == "JPEG":
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            # JPEG has no alpha; flatten onto white rather than exposing hidden RGB values.
            rgba = img.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            img = flat
        elif img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
    elif img.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")

    params: dict[str, object] = {}
    if icc := img.info.get("icc_profile"):
        params["icc_profile"] = icc
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = quality
    if fmt == "PNG" and fast:
        params["compress_level"] = 1  # large uploads: a bigger file beats seconds of zlib
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def reencode(data: bytes, **open_kwargs: Any) -> tuple[bytes, str, int, int]:
    """Open untrusted bytes and re-encode them, stripping metadata and anything hidden.

    JPEG stays JPEG (re-compressing photos as PNG would bloat them); everything else becomes
    PNG. Returns ``(bytes, mime, width, height)``.
    """
    img = open_image(data, **open_kwargs)
    fmt = "JPEG" if sniff_mime(data) == "image/jpeg" else "PNG"
    out = encode(img, fmt)
    return out, _ENCODE_FORMATS[fmt], img.width, img.height
