"""The payment code's QR (omo.pay.qr) is exactly what segno draws for it."""

from __future__ import annotations

import secrets

import pytest
import segno

from omo.pay.api import code_qr_svg
from omo.pay.qr import payment_code_svg


def _segno(code: str) -> str:
    qr = segno.make(code, error="m", micro=False, version=1, mask=0)
    svg: str = qr.svg_inline(scale=4, dark="#111", light="#fff")
    return svg


def test_same_svg_as_segno_for_every_kind_of_code() -> None:
    codes = ["280000000000000000", "289999999999999999", "281000000000000001"]
    codes += ["28" + str(secrets.randbelow(10**16)).zfill(16) for _ in range(1500)]
    codes += ["".join(secrets.choice("0123456789") for _ in range(18)) for _ in range(500)]
    for code in codes:
        assert payment_code_svg(code) == _segno(code), code
        assert code_qr_svg(code) == _segno(code)


@pytest.mark.parametrize("code", ["", "28123", "28123456789012345x", "2812345678901234567"])
def test_only_payment_codes(code: str) -> None:
    with pytest.raises(ValueError, match="18 digits"):
        payment_code_svg(code)
