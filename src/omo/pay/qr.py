"""The payment code's QR as SVG, drawn without a general QR library on the hot path.

A payment code is always 18 digits, which segno encodes as a version 1 QR code in numeric
mode at error level Q (segno raises the requested M to Q since it still fits), here with the
fixed mask pattern 0. Everything but the 208 data modules is therefore the same for every
code: the finder and timing patterns and the format information are taken once from segno's
own drawing of one code, and each code only fills the data modules (its bits and their
Reed-Solomon error correction, placed in the standard zigzag order, masked). The SVG is
written as segno's `svg_inline(scale=4, dark="#111", light="#fff")` writes it, byte for byte
(tests/pay/test_qr.py compares both over many codes): about a twentieth of segno's CPU, which
was a third of a code's request (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import functools

import segno

SIZE = 21  # version 1
DATA_CODEWORDS, EC_CODEWORDS = 13, 13  # version 1-Q
BORDER, SCALE = 4, 4


def _gf_tables() -> tuple[list[int], list[int]]:
    exp, log = [0] * 512, [0] * 256
    value = 1
    for power in range(255):
        exp[power], log[value] = value, power
        value <<= 1
        if value & 0x100:
            value ^= 0x11D
    for power in range(255, 512):
        exp[power] = exp[power - 255]
    return exp, log


_EXP, _LOG = _gf_tables()


def _generator(degree: int) -> list[int]:
    """Coefficients of the product of (x - α^i), i < degree, highest power first."""
    poly = [1]
    for i in range(degree):
        nxt = [0] * (len(poly) + 1)
        for j, coefficient in enumerate(poly):
            nxt[j] ^= coefficient
            if coefficient:
                nxt[j + 1] ^= _EXP[_LOG[coefficient] + i]
        poly = nxt
    return poly


_GENERATOR = _generator(EC_CODEWORDS)


def _error_correction(data: list[int]) -> list[int]:
    remainder = [0] * EC_CODEWORDS
    generator = _GENERATOR
    for byte in data:
        factor = byte ^ remainder[0]
        remainder = [*remainder[1:], 0]
        if factor:
            log_factor = _LOG[factor]
            for j in range(EC_CODEWORDS):
                remainder[j] ^= _EXP[_LOG[generator[j + 1]] + log_factor]
    return remainder


def _function_module(row: int, col: int) -> bool:
    """Finder patterns with their separators and format information, and timing patterns
    (version 1 has no alignment pattern; the dark module is inside the bottom-left area)."""
    if row <= 8 and (col <= 8 or col >= SIZE - 8):
        return True
    if row >= SIZE - 8 and col <= 8:
        return True
    return row == 6 or col == 6


def _data_positions() -> list[tuple[int, int]]:
    """The data modules in the order the codewords' bits fill them (ISO/IEC 18004 7.7.3)."""
    positions: list[tuple[int, int]] = []
    upward = True
    col = SIZE - 1
    while col > 0:
        if col == 6:
            col -= 1
        rows = range(SIZE - 1, -1, -1) if upward else range(SIZE)
        for row in rows:
            for c in (col, col - 1):
                if not _function_module(row, c):
                    positions.append((row, c))
        upward = not upward
        col -= 2
    return positions


@functools.cache
def _template() -> tuple[list[list[int]], list[tuple[int, int, int]]]:
    """The matrix's constant modules (taken from segno) and, per data bit, its module and
    mask bit (mask 0: dark where row + column is even)."""
    sample = segno.make("280000000000000000", error="m", micro=False, version=1, mask=0)
    assert sample.designator == "1-Q", sample.designator
    assert sample.mask == 0
    base = [[1 if bit else 0 for bit in row] for row in sample.matrix]
    places = [(row, col, 1 if (row + col) % 2 == 0 else 0) for row, col in _data_positions()]
    assert len(places) == (DATA_CODEWORDS + EC_CODEWORDS) * 8
    return base, places


def _codewords(code: str) -> list[int]:
    bits = "0001" + format(len(code), "010b")
    for start in range(0, len(code), 3):
        group = code[start : start + 3]
        bits += format(int(group), {3: "010b", 2: "07b", 1: "04b"}[len(group)])
    capacity = DATA_CODEWORDS * 8
    bits += "0" * min(4, capacity - len(bits))
    bits += "0" * (-len(bits) % 8)
    data = [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]
    pad = 0
    while len(data) < DATA_CODEWORDS:
        data.append((0xEC, 0x11)[pad % 2])
        pad += 1
    return data + _error_correction(data)


def _matrix(code: str) -> list[list[int]]:
    base, places = _template()
    matrix = [row[:] for row in base]
    stream = "".join(format(word, "08b") for word in _codewords(code))
    for (row, col, mask), bit in zip(places, stream, strict=True):
        matrix[row][col] = (bit == "1") ^ mask
    return matrix


def _path(matrix: list[list[int]]) -> str:
    """The dark modules as horizontal lines, as segno's `matrix_to_lines` and SVG writer
    draw them (relative moves after the first)."""
    parts: list[str] = []
    last_x, last_y = 0, 0.0
    y = BORDER + 0.5 - 1
    last_bit = 1
    for row in matrix:
        x1 = x2 = BORDER
        y += 1
        for bit in row:
            if last_bit != bit and not bit:
                parts.append(_move(len(parts), x1 - last_x, y - last_y, x2 - x1))
                last_x, last_y = x2, y
                x1 = x2
            x2 += 1
            if not bit:
                x1 += 1
            last_bit = bit
        if last_bit:
            parts.append(_move(len(parts), x1 - last_x, y - last_y, x2 - x1))
            last_x, last_y = x2, y
            last_bit = 0
    return "".join(parts)


def _move(index: int, dx: int, dy: float, length: int) -> str:
    shown = int(dy) if int(dy) == dy else dy
    return f"{'m' if index else 'M'}{dx} {shown}h{length}"


_WIDTH = (SIZE + 2 * BORDER) * SCALE
_HEAD = (
    f'<svg width="{_WIDTH}" height="{_WIDTH}" class="segno"><g transform="scale({SCALE})">'
    f'<path fill="#fff" d="M0 0h{SIZE + 2 * BORDER}v{SIZE + 2 * BORDER}h-{SIZE + 2 * BORDER}z"/>'
    '<path class="qrline" stroke="#111" d="'
)


def payment_code_svg(code: str) -> str:
    """The QR of an 18-digit payment code, as `segno.make(code, error="m", micro=False,
    version=1, mask=0).svg_inline(scale=4, dark="#111", light="#fff")` draws it."""
    if len(code) != 18 or not code.isdigit():
        raise ValueError("a payment code is 18 digits")
    return _HEAD + _path(_matrix(code)) + '"/></g></svg>'
