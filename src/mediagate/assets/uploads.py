"""Streaming multipart intake: file parts go to disk as they arrive, with limits enforced
while streaming, so a request of many large images never sits in memory and an oversize
part is refused at the byte that crosses the limit.

Then every staged file is checked like any file that enters the server: sniffed by content,
opened with the format allowlist under the pixel limit (decompression bombs refused before
decoding), and re-encoded (JPEG stays JPEG, everything else becomes PNG), one at a time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart import MultipartParser
from python_multipart.exceptions import ParseError
from python_multipart.multipart import parse_options_header

from mediagate.assets.models import Asset
from mediagate.assets.signing import signed_path
from mediagate.assets.storage import Storage
from mediagate.db.base import new_id
from mediagate.errors import NUL_REFUSED, InvalidRequest, PayloadTooLarge
from mediagate.images.intake import ImageRejected, encode, open_image, sniff_mime

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 50
# Inputs are never needed above this long side (outputs top out at 4K); larger ones are
# scaled down at intake.
MAX_STORED_LONG_SIDE = 4096


@dataclass
class StagedFile:
    field: str
    filename: str
    declared_type: str
    path: Path
    size: int = 0


@dataclass
class ParsedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[StagedFile] = field(default_factory=list)

    def cleanup(self) -> None:
        for staged in self.files:
            staged.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    mime_type: str
    size: int
    width: int
    height: int


class _Collector:
    """python-multipart callbacks: headers, then data for one part at a time."""

    def __init__(
        self,
        form: ParsedForm,
        staging: Path,
        is_file_field: Callable[[str], bool],
        max_files: int,
        max_file_bytes: int,
    ) -> None:
        self.form, self.staging = form, staging
        self.is_file_field, self.max_files, self.max_file_bytes = (
            is_file_field,
            max_files,
            max_file_bytes,
        )
        self._header_name = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._field_value = bytearray()
        self._file: StagedFile | None = None
        self._handle: object = None

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers, self._header_name = {}, b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        key = self._header_name.lower()
        self._headers[key] = self._headers.get(key, b"") + data[start:end]

    def on_header_end(self) -> None:
        self._header_name = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is not None or self.is_file_field(self._name):
            if not self.is_file_field(self._name):
                raise InvalidRequest(f"unexpected file field {self._name!r}", field=self._name)
            if len(self.form.files) >= self.max_files:
                raise InvalidRequest(f"at most {self.max_files} images", field="images")
            fd, path = tempfile.mkstemp(dir=self.staging, prefix=".upload-")
            self._handle = os.fdopen(fd, "wb")
            self._file = StagedFile(
                field=self._name,
                filename=(filename or b"").decode("utf-8", "replace")[:255],
                declared_type=self._headers.get(b"content-type", b"").decode("latin-1"),
                path=Path(path),
            )
            self.form.files.append(self._file)
        else:
            if len(self.form.fields) >= MAX_FIELDS:
                raise InvalidRequest("too many form fields")
            self._field_value = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.size += end - start
            if self._file.size > self.max_file_bytes:
                raise PayloadTooLarge(
                    f"each image may be at most {self.max_file_bytes} bytes", field=self._file.field
                )
            self._handle.write(data[start:end])  # type: ignore[attr-defined]
        else:
            self._field_value += data[start:end]
            if len(self._field_value) > MAX_FIELD_BYTES:
                raise PayloadTooLarge(f"form field {self._name!r} is too large", field=self._name)

    def on_part_end(self) -> None:
        if self._file is not None:
            self._handle.close()  # type: ignore[attr-defined]
            self._file = None
        else:
            value = self._field_value.decode("utf-8", "replace")
            if "\x00" in value or "\x00" in self._name:  # PostgreSQL cannot store it
                raise InvalidRequest(
                    f"form field {self._name!r}: {NUL_REFUSED}",
                    field=self._name,
                )
            self.form.fields[self._name] = value

    def close(self) -> None:
        if self._file is not None:
            self._handle.close()  # type: ignore[attr-defined]


async def parse_multipart(
    chunks: AsyncIterator[bytes],
    content_type: str,
    staging: Path,
    *,
    is_file_field: Callable[[str], bool],
    max_files: int,
    max_file_bytes: int,
) -> ParsedForm:
    """Read a multipart body chunk by chunk; raise (and delete what was staged) on a limit."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidRequest("multipart/form-data needs a boundary")
    await asyncio.to_thread(staging.mkdir, parents=True, exist_ok=True)
    form = ParsedForm()
    collector = _Collector(form, staging, is_file_field, max_files, max_file_bytes)
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    try:
        try:
            async for chunk in chunks:
                parser.write(chunk)
            parser.finalize()
        except ParseError as exc:  # not multipart as it claims to be
            raise InvalidRequest(f"malformed multipart body: {exc}", field="body") from None
    except BaseException:
        collector.close()
        form.cleanup()
        raise
    return form


def _intake(path: Path, *, max_pixels: int) -> tuple[bytes, str, int, int]:
    try:
        image = open_image(path, max_pixels=max_pixels, max_side=MAX_STORED_LONG_SIDE)
    except ImageRejected as exc:
        raise InvalidRequest(
            f"image refused: {exc.message}", code="invalid_image", reason=exc.reason
        ) from exc
    fmt = "JPEG" if sniff_mime(_first_bytes(path)) == "image/jpeg" else "PNG"
    data = encode(image, fmt, quality=92, fast=True)
    return data, ("image/jpeg" if fmt == "JPEG" else "image/png"), image.width, image.height


def _first_bytes(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(32)


async def store_image(path: Path, storage: Storage, *, max_pixels: int) -> StoredImage:
    data, mime, width, height = await asyncio.to_thread(_intake, path, max_pixels=max_pixels)
    sha = await asyncio.to_thread(storage.put, data)
    return StoredImage(sha, mime, len(data), width, height)


# Links to a job's own inputs outlive any queue wait: only our worker reads them.
INPUT_LINK_TTL = 30 * 24 * 3600


def base64_size(raw_bytes: int) -> int:
    """How long ``raw_bytes`` bytes are in base64 (a data URL's payload)."""
    return (raw_bytes + 2) // 3 * 4


def decode_base64_image(
    text: str, *, max_bytes: int, field: str, limit_label: str, raw_allowed: bool
) -> bytes:
    """The bytes of a ``data:image/...;base64,`` URL (or, where ``raw_allowed``, of bare
    base64), refused before decoding when the text alone is already too long."""
    payload = text
    if text.startswith("data:"):
        header, _, payload = text.partition(",")
        if not header.startswith("data:image/") or ";base64" not in header:
            raise InvalidRequest(
                "data URLs must look like data:image/<type>;base64,<data>", field=field
            )
    elif not raw_allowed:
        raise InvalidRequest("expected a data:image/...;base64,... URL", field=field)
    too_large = PayloadTooLarge(f"each image may be at most {limit_label}", field=field)
    if len(payload) > base64_size(max_bytes) + 8:
        raise too_large
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("not valid base64", field=field) from None
    if len(data) > max_bytes:
        raise too_large
    return data


async def store_image_bytes(
    data: bytes, storage: Storage, staging: Path, *, max_pixels: int
) -> StoredImage:
    """Check and store an image that arrived inside a JSON body (via a staging file, so the
    intake path is the one uploads take)."""
    await asyncio.to_thread(staging.mkdir, parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=staging, prefix=".inline-") as tmp:
        tmp.write(data)
        tmp.flush()
        return await store_image(Path(tmp.name), storage, max_pixels=max_pixels)


def input_assets(workspace_id: str, stored: list[StoredImage]) -> list[Asset]:
    """Asset rows for a request's stored images, to be recorded with its job."""
    return [
        Asset(
            id=new_id(),
            workspace_id=workspace_id,
            role="input",
            position=i,
            sha256=img.sha256,
            mime_type=img.mime_type,
            bytes=img.size,
            width=img.width,
            height=img.height,
        )
        for i, img in enumerate(stored)
    ]


def input_links(signing_key: bytes, assets: list[Asset]) -> list[str]:
    return [signed_path(signing_key, a.id, INPUT_LINK_TTL) for a in assets]
