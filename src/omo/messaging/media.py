"""Checking uploaded media by content, not by what the client claims: pure functions."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from omo.core.errors import ProblemError

IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
IMAGE_MAX_PIXELS = 40_000_000
THUMBNAIL_SIDE = 320
MEDIA_KINDS = ("image", "voice", "video", "file")
# Per kind; the platform's request size limit caps them all.
SIZE_LIMITS = {
    "image": 10 * 1024 * 1024,
    "voice": 5 * 1024 * 1024,
    "video": 50 * 1024 * 1024,
    "file": 50 * 1024 * 1024,
}


@dataclass(frozen=True, slots=True)
class Checked:
    content_type: str
    width: int | None = None
    height: int | None = None
    thumbnail: bytes | None = None


def _audio_or_video_type(data: bytes, kind: str) -> str | None:
    if data[:4] == b"OggS":
        return "audio/ogg" if kind == "voice" else None
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "audio/webm" if kind == "voice" else "video/webm"
    if data[4:8] == b"ftyp":
        return "audio/mp4" if kind == "voice" else "video/mp4"
    if kind == "voice" and (
        data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)
    ):
        return "audio/mpeg"
    if kind == "voice" and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    return None


def check(kind: str, data: bytes) -> Checked:
    """The real type of the bytes for that kind, or a refusal; images get a thumbnail."""
    if kind == "file":
        return Checked("application/octet-stream")
    if kind == "image":
        try:
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in IMAGE_FORMATS:
                    raise ProblemError("invalid-media", "Send a PNG, JPEG, WebP or GIF image.")
                width, height = image.size
                if width * height > IMAGE_MAX_PIXELS:
                    raise ProblemError("invalid-media", "That image has too many pixels.")
                thumb = image.convert("RGB")
                thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
                out = io.BytesIO()
                thumb.save(out, "JPEG", quality=80)
                return Checked(IMAGE_FORMATS[image.format], width, height, out.getvalue())
        except (
            UnidentifiedImageError,
            OSError,
            SyntaxError,
            ValueError,
            Image.DecompressionBombError,
        ) as exc:
            raise ProblemError("invalid-media", "That file is not an image we can read.") from exc
    content_type = _audio_or_video_type(data, kind)
    if content_type is None:
        if kind == "voice":
            raise ProblemError("invalid-media", "Send a voice note as Ogg, WebM, MP4, MP3 or WAV.")
        raise ProblemError("invalid-media", "Send a video as MP4 or WebM.")
    return Checked(content_type)
