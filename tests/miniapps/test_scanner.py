"""The scanner's decoder: QR codes and retail barcodes in a camera frame or a chosen image;
refused for people who are not logged in, for what is not an image, and for images too big
in bytes or in pixels."""

from __future__ import annotations

import io

import httpx
import segno
import zxingcpp
from PIL import Image
from tests.miniapps.conftest import API, Person

DECODE = f"{API}/scanner/decode"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _qr(text: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=5)
    return buffer.getvalue()


def _ean13(digits: str) -> bytes:
    drawn = memoryview(
        zxingcpp.create_barcode(digits, zxingcpp.BarcodeFormat.EAN13).to_image(scale=3)
    )
    height, width = drawn.shape
    bitmap = Image.frombytes("L", (width, height), drawn.tobytes())
    framed = Image.new("L", (width + 80, height + 80), 255)
    framed.paste(bitmap, (40, 40))
    return _png(framed)


async def test_a_qr_code_and_a_product_barcode_are_read(
    client: httpx.AsyncClient, diner: Person
) -> None:
    link = "http://127.0.0.1:8000/mp/mp0123456789abcdef/pages/menu?scene=t%3D12"
    qr = await client.post(DECODE, content=_qr(link), headers=diner.headers)
    assert qr.status_code == 200, qr.text
    assert qr.json() == {"codes": [{"result": link, "scanType": "QR_CODE"}]}
    photo = Image.open(io.BytesIO(_qr(link))).convert("RGB").resize((400, 400))
    jpeg = io.BytesIO()
    photo.save(jpeg, format="JPEG", quality=70)
    assert (await client.post(DECODE, content=jpeg.getvalue(), headers=diner.headers)).json()[
        "codes"
    ][0]["result"] == link
    ean = await client.post(DECODE, content=_ean13("4006381333931"), headers=diner.headers)
    assert ean.json()["codes"] == [{"result": "4006381333931", "scanType": "EAN_13"}]


async def test_an_image_without_a_code_reads_nothing(
    client: httpx.AsyncClient, diner: Person
) -> None:
    blank = _png(Image.new("L", (300, 200), 255))
    found = await client.post(DECODE, content=blank, headers=diner.headers)
    assert found.status_code == 200
    assert found.json() == {"codes": []}


async def test_the_decoder_refuses_strangers_non_images_and_huge_images(
    client: httpx.AsyncClient, diner: Person
) -> None:
    anonymous = await client.post(DECODE, content=_qr("x"))
    assert anonymous.status_code == 401
    text = await client.post(DECODE, content=b"not an image at all", headers=diner.headers)
    assert text.status_code == 422
    assert text.json()["type"] == "/problems/miniapps-bad-image"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"/>'
    assert (await client.post(DECODE, content=svg, headers=diner.headers)).status_code == 422
    # Small in bytes, huge once unpacked: refused before the bitmap is built.
    bomb = _png(Image.new("1", (5000, 5000), 1))
    assert len(bomb) < 100_000
    refused = await client.post(DECODE, content=bomb, headers=diner.headers)
    assert refused.status_code == 413
    assert refused.json()["type"] == "/problems/miniapps-image-too-large"
    heavy = await client.post(
        DECODE, content=b"\x89PNG" + b"0" * (2 * 1024 * 1024), headers=diner.headers
    )
    assert heavy.status_code == 413
