"""Money as an integer count of a currency's minor units (ISO 4217), never a float.

Binary floats cannot hold 0.10 exactly, so every amount is an `int` of minor units
(cents, fils, yen) next to its currency code. Currency codes and their minor units come
from CLDR through Babel, the same data that formats them for people.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import cache

from babel.numbers import format_currency, get_currency_precision, list_currencies

__all__ = ["CurrencyMismatch", "Money", "MoneyError", "minor_units"]

# Plain decimal notation only: exponents, NaN, underscores and non-ASCII digits are all
# valid for `Decimal()` but are not something a person or a client means as an amount.
_DECIMAL_TEXT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")

# Bounds the work a hostile input such as "1E999999999" could cause while parsing.
_MAX_EXPONENT_SHIFT = 64


class MoneyError(ValueError):
    """An amount or currency that cannot be money."""


class CurrencyMismatch(MoneyError):  # noqa: N818 - reads as the domain term
    """Arithmetic or ordering between two different currencies."""


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def _check_currency(currency: str) -> None:
    if not isinstance(currency, str):
        raise TypeError(f"currency must be a str, not {type(currency).__name__}")
    if currency != currency.upper():
        raise MoneyError(f"currency codes are upper case: {currency!r}")
    if currency not in _known_currencies():
        raise MoneyError(f"unknown currency code: {currency!r}")


@cache
def minor_units(currency: str) -> int:
    """Number of decimal places of `currency`'s minor unit: JPY 0, EUR 2, KWD 3."""
    # Calls that raise are not cached, so at most the few hundred real codes are kept.
    _check_currency(currency)
    return int(get_currency_precision(currency))


def _scale_exactly(value: Decimal, places: int) -> int:
    """`value * 10**places` as an int, refusing anything that would need rounding."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise MoneyError(f"not a finite amount: {value}")
    coefficient = int("".join(map(str, digits)))
    shift = exponent + places
    if coefficient == 0:
        return 0
    if abs(shift) > _MAX_EXPONENT_SHIFT:
        raise MoneyError(f"amount out of range: {value}")
    scaled: int
    if shift >= 0:
        scaled = coefficient * 10**shift
    else:
        scaled, remainder = divmod(coefficient, 10**-shift)
        if remainder:
            raise MoneyError(f"{value} has more than {places} decimal places")
    return -scaled if sign else scaled


def _parse_decimal(value: str | Decimal) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        return Decimal(value)
    if isinstance(value, str):
        raise MoneyError(f"not a plain decimal amount: {value!r}")
    raise MoneyError(f"amounts are parsed from str or Decimal, not {type(value).__name__}")


def _largest_remainder(total: int, ratios: Sequence[int]) -> list[int]:
    """Split a non-negative `total` in proportion to `ratios`; the parts sum to `total`."""
    weight = sum(ratios)
    shares = [total * ratio // weight for ratio in ratios]
    leftover = total - sum(shares)
    # Earlier positions win ties so that the split is deterministic.
    by_remainder = sorted(range(len(ratios)), key=lambda i: (-(total * ratios[i] % weight), i))
    for index in by_remainder[:leftover]:
        shares[index] += 1
    return shares


def _check_ratios(ratios: Sequence[int]) -> None:
    if not ratios:
        raise MoneyError("allocate needs at least one ratio")
    if any(not isinstance(r, int) or isinstance(r, bool) or r < 0 for r in ratios):
        raise MoneyError("ratios must be non-negative ints")
    if sum(ratios) == 0:
        raise MoneyError("ratios must not all be zero")


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: `amount_minor` minor units of `currency` (e.g. 150 EUR = €1.50).

    `==` between different currencies is simply False (so Money can live in sets and
    dicts); arithmetic and ordering between different currencies raise CurrencyMismatch.
    """

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        # bool is an int subclass, and True cents is always a bug.
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            kind = type(self.amount_minor).__name__
            raise TypeError(f"amount_minor must be an int of minor units, not {kind}")
        _check_currency(self.currency)

    @classmethod
    def of(cls, amount: str | Decimal, currency: str) -> Money:
        """Parse a decimal amount in major units exactly: `Money.of("1.50", "EUR")`."""
        places = minor_units(currency)
        return cls(_scale_exactly(_parse_decimal(amount), places), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def to_decimal(self) -> Decimal:
        """The amount in major units, exact: Money(150, "EUR") -> Decimal("1.50")."""
        places = minor_units(self.currency)
        digits = tuple(int(d) for d in str(abs(self.amount_minor)))
        return Decimal((int(self.amount_minor < 0), digits, -places))

    def format(self, locale: str = "en") -> str:
        """Render for people in `locale`: "€1.50" (en), "1,50 €" (it), "¥1,235" (en)."""
        value = self.to_decimal()
        # Babel quantizes in the current context; widen it so huge amounts stay exact.
        with localcontext() as context:
            context.prec = max(context.prec, len(value.as_tuple().digits) + 8)
            return str(format_currency(value, self.currency, locale=locale))

    def allocate(self, ratios: Sequence[int]) -> list[Money]:
        """Split by integer `ratios` without losing or inventing a minor unit.

        Units left over after rounding down go to the parts with the largest remainders,
        so `Money(100, "EUR").allocate([1, 1, 1])` gives 34, 33, 33 cents.
        """
        _check_ratios(ratios)
        sign = -1 if self.amount_minor < 0 else 1
        shares = _largest_remainder(abs(self.amount_minor), ratios)
        return [Money(sign * share, self.currency) for share in shares]

    # Operators take `Money` so mypy catches `money + 1`; the isinstance checks in
    # them still refuse it at run time for untyped callers.
    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} do not mix")

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __mul__(self, factor: int) -> Money:
        # Fractional factors would need a rounding rule; callers use allocate() instead.
        if not isinstance(factor, int) or isinstance(factor, bool):
            return NotImplemented
        return Money(self.amount_minor * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount_minor <= other.amount_minor

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount_minor > other.amount_minor

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount_minor >= other.amount_minor

    def __str__(self) -> str:
        return f"{self.to_decimal():f} {self.currency}"
