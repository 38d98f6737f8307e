"""Decimal128 values as the text Relaxed Extended JSON writes for them (``str`` of
pymongo's Decimal128, several times faster), and whether a parser's Decimal128 of that
text is the same 16 bytes (SPEC 3: a line must read back as the stored document, bit
for bit). fastcodec's hooks write every Decimal128 through here.

Pure: no I/O.
"""

from __future__ import annotations

from bson.decimal128 import Decimal128

SPECIAL = 0x6000_0000_0000_0000  # infinities, NaNs and the large-coefficient form
MAX_COEFFICIENT = 10**34 - 1


def decimal_text(value: Decimal128) -> str:
    """``str(value)`` several times faster (pymongo builds a ``decimal.Decimal`` digit by
    digit in Python). A canonical coefficient has at most 34 digits and a BSON exponent
    lies in -6176..6111, so the Decimal128 context neither rounds nor clamps it, and the
    text is the General Decimal Arithmetic to-scientific-string of coefficient and
    exponent: plain notation when the exponent is <= 0 and the adjusted one >= -6."""
    # The two halves as pymongo holds them (``bid`` would pack them only to be unpacked).
    high, low = value._Decimal128__high, value._Decimal128__low  # type: ignore[attr-defined]
    if high & SPECIAL == SPECIAL:
        return rare_decimal(value, high, low)[0]
    exponent = ((high & 0x7FFF_8000_0000_0000) >> 49) - 6176
    coefficient = ((high & 0x0001_FFFF_FFFF_FFFF) << 64) | low
    digits = str(coefficient) if coefficient <= MAX_COEFFICIENT else "0"  # else 0 (spec)
    sign = "-" if high >> 63 else ""
    n = len(digits)
    adjusted = exponent + n - 1
    if exponent <= 0 and adjusted >= -6:
        if exponent == 0:
            return sign + digits
        point = n + exponent
        if point > 0:
            return f"{sign}{digits[:point]}.{digits[point:]}"
        return f"{sign}0.{'0' * -point}{digits}"
    fraction = "." + digits[1:] if n > 1 else ""
    return f"{sign}{digits[0]}{fraction}E{adjusted:+d}"


_RARE: dict[tuple[int, int], tuple[str, bool]] = {}
COEFFICIENT_HIGH = 0x0001_FFFF_FFFF_FFFF  # the coefficient's bits in the high half
LARGE_HIGH = MAX_COEFFICIENT >> 64  # below it in the high half, a coefficient is canonical


def rare_decimal(value: Decimal128, high: int, low: int) -> tuple[str, bool]:
    """A Decimal128 of a special form (NaN, sNaN, an infinity, the large-coefficient form)
    or with a coefficient near or beyond 34 digits, as its text, and whether that text
    decodes back to the same 16 bytes (``Decimal128(text).bid``): true for the canonical
    NaN, Infinity and -Infinity, false for a NaN's sign or payload, an sNaN, stray bits, a
    coefficient beyond 34 digits (read as 0). Remembered by the bits: a day's events
    usually carry the same few."""
    key = (high, low)
    known = _RARE.get(key)
    if known is None:
        text = str(value) if high & SPECIAL == SPECIAL else decimal_text(value)
        try:
            exact = Decimal128(text).bid == value.bid
        except Exception:  # a text Decimal128 refuses cannot read back at all
            exact = False
        known = (text, exact)
        if len(_RARE) >= 1024:
            _RARE.clear()
        _RARE[key] = known
    return known
