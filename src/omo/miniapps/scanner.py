"""Decoding what the scanner sees: a camera frame or a chosen image → the codes in it.

The camera stays in the host page (the mini program's frame never gets it); the host sends a
still frame here, or the picture the person chose. zxing-cpp (the maintained C++ port of
ZXing, as wheels) reads QR codes and the retail barcodes scan-and-go needs (EAN-13, EAN-8,
UPC-A, UPC-E) plus the other common symbologies. Images are checked before decoding: at most
`MAX_IMAGE_BYTES` and `MAX_PIXELS`, in a format Pillow knows, so a small file that unpacks to
a huge bitmap is refused before it is unpacked.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import zxingcpp
from PIL import Image, UnidentifiedImageError

from omo.core.errors import ProblemError, register

register("miniapps-bad-image", 422, "The image cannot be read")
register("miniapps-image-too-large", 413, "The image is too large")

MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP"})
# What a symbology is called for mini programs (WeChat's scanType names where they exist).
SCAN_TYPES = {
    "QRCode": "QR_CODE",
    "MicroQRCode": "QR_CODE",
    "EAN13": "EAN_13",
    "EAN8": "EAN_8",
    "UPCA": "UPC_A",
    "UPCE": "UPC_E",
    "Code128": "CODE_128",
    "Code39": "CODE_39",
    "Code93": "CODE_93",
    "ITF": "ITF",
    "Codabar": "CODABAR",
    "DataMatrix": "DATA_MATRIX",
    "PDF417": "PDF_417",
    "Aztec": "AZTEC",
}


@dataclass(frozen=True)
class Decoded:
    text: str
    scan_type: str


def decode_image(data: bytes) -> list[Decoded]:
    """Every code found in the image, the largest first (CPU bound: call it off the loop)."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ProblemError("miniapps-image-too-large", "Send an image of at most 2 MiB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            if opened.format not in FORMATS:
                raise ProblemError("miniapps-bad-image", "Send a PNG, JPEG, WebP or GIF image.")
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise ProblemError(
                    "miniapps-image-too-large", "Send an image of at most 4096×4096 pixels."
                )
            image = opened.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombWarning):
        raise ProblemError("miniapps-bad-image", "Send a PNG, JPEG, WebP or GIF image.") from None
    found = zxingcpp.read_barcodes(image)
    ordered = sorted(
        found,
        key=lambda code: (
            -abs(
                (code.position.bottom_right.x - code.position.top_left.x)
                * (code.position.bottom_right.y - code.position.top_left.y)
            )
        ),
    )
    return [
        Decoded(code.text, SCAN_TYPES.get(code.format.name, code.format.name.upper()))
        for code in ordered
        if code.valid and code.text
    ]
