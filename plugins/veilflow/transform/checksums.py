"""Check digits and structural validity of identifiers: Luhn, IBAN mod-97, the VIN's
mod-11, SSN ranges. The one home of each: the detectors check with them, the ``ff1``
operator keeps a card number Luhn-valid with them, and the demo data, the corpus and the
gate's canaries make valid numbers with them.

Scalar versions serve the text scanner and the generators (a few values at a time); the
array versions work on a whole column or chunk at once with numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: IBAN length per country (ISO 13616 registry, the countries seen in practice).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24,
    "AE": 23,
    "AL": 28,
    "AT": 20,
    "AZ": 28,
    "BA": 20,
    "BE": 16,
    "BG": 22,
    "BH": 22,
    "BR": 29,
    "BY": 28,
    "CH": 21,
    "CR": 22,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "DO": 28,
    "EE": 20,
    "EG": 29,
    "ES": 24,
    "FI": 18,
    "FO": 18,
    "FR": 27,
    "GB": 22,
    "GE": 22,
    "GI": 23,
    "GL": 18,
    "GR": 27,
    "GT": 28,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IL": 23,
    "IQ": 23,
    "IS": 26,
    "IT": 27,
    "JO": 30,
    "KW": 30,
    "KZ": 20,
    "LB": 28,
    "LC": 32,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MD": 24,
    "ME": 22,
    "MK": 19,
    "MR": 27,
    "MT": 31,
    "MU": 30,
    "NL": 18,
    "NO": 15,
    "PK": 24,
    "PL": 28,
    "PS": 29,
    "PT": 25,
    "QA": 29,
    "RO": 24,
    "RS": 22,
    "SA": 24,
    "SC": 31,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "ST": 25,
    "SV": 28,
    "TL": 23,
    "TN": 24,
    "TR": 26,
    "UA": 29,
    "VA": 22,
    "VG": 24,
    "XK": 20,
}


#: Luhn contribution of a digit at a doubled position, and its inverse.
LUHN_DOUBLE = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int64)
LUHN_UNDOUBLE = np.argsort(LUHN_DOUBLE)
_DOUBLED = tuple(int(d) for d in LUHN_DOUBLE)


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_check_digit(body: str) -> str:
    """The digit that, appended to ``body``, makes a Luhn-valid number."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = ord(ch) - 48
        total += _DOUBLED[d] if i % 2 == 0 else d
    return str((10 - total % 10) % 10)


def luhn_matrix_sums(digits: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.int64]:
    """Luhn sum of each row of a digit matrix (last column = rightmost digit): the plain sum
    plus, on every second column from the right's second, the doubling's surplus."""
    width = digits.shape[1]
    total = digits.sum(axis=1, dtype=np.int64)
    twice = digits[:, (width - 2) % 2 :: 2] if width > 1 else digits[:, :0]
    total += (np.take(LUHN_DOUBLE, twice) - twice).sum(axis=1, dtype=np.int64)
    return np.asarray(total, dtype=np.int64)


def luhn_position_sums(
    digits: npt.NDArray[Any], from_right: npt.NDArray[Any], row_of: npt.NDArray[Any], rows: int
) -> npt.NDArray[np.int64]:
    """Luhn sum of each row over loose digits: each digit's position counted from its
    row's right end, ``row_of`` its row (for rows of differing length, flattened)."""
    contrib = np.where(from_right % 2 == 1, LUHN_DOUBLE[digits], digits)
    return np.bincount(row_of, weights=contrib, minlength=rows).astype(np.int64)


def card_ok(digits: str) -> bool:
    """A plausible payment card number: 12-19 digits, a card network's leading digit
    (2-series and 5-series Mastercard, 4 Visa incl. 19 digits, 3 Amex/JCB/Diners,
    5/6 Maestro and Discover/UnionPay; 12 digits only for Maestro) and Luhn."""
    n = len(digits)
    # UK Maestro's 0604 and JCB's 15-digit 1800 ranges start outside 2-6.
    maestro_uk = digits.startswith("0604")
    jcb15 = n == 15 and digits.startswith("1800")
    if n < 12 or n > 19 or (digits[0] not in "23456" and not maestro_uk and not jcb15):
        return False
    if n == 12 and digits[0] not in "56" and not maestro_uk:
        return False
    return luhn_ok(digits)


def iban_ok(compact: str) -> bool:
    """ISO 13616 check: known country length and mod-97 == 1."""
    if len(compact) < 15 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    want = IBAN_LENGTHS.get(compact[:2])
    if want is not None and len(compact) != want:
        return False
    return _mod97(compact)


def iban_prefix(compact: str) -> tuple[str, bool] | None:
    """The IBAN at the start of ``compact`` (trailing characters tolerated) and whether its
    length is the country's. A mod-97-valid string of another length is still returned:
    a mistyped or truncated account number is still an account number."""
    want = IBAN_LENGTHS.get(compact[:2])
    if want is not None:
        head = compact[:want]
        if len(head) == want and iban_ok(head):
            return head, True
    for n in range(min(len(compact), 34), 14, -1):
        head = compact[:n]
        if _mod97(head):
            return head, want is None
    return None


def _mod97(compact: str) -> bool:
    if not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    try:
        return _base36_number(compact[4:] + compact[:4]) % 97 == 1
    except ValueError:
        return False


def _base36_number(text: str) -> int:
    """ISO 7064's reading of letters as numbers: A=10 … Z=35, digits as they are."""
    return int("".join(str(int(c, 36)) for c in text))


def iban_check_digits(country: str, bban: str) -> str:
    """The two check digits that make ``country`` + digits + ``bban`` a valid IBAN."""
    return f"{98 - _base36_number(bban + country + '00') % 97:02d}"


def ssn_ok(digits: str) -> bool:
    """US SSN ranges: area not 000, 666 or 900-999, group not 00, serial not 0000."""
    if len(digits) != 9 or not digits.isdigit():
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def luhn_array(digits: list[str]) -> npt.NDArray[np.bool_]:
    """Luhn check over many digit strings at once (rows of differing length allowed)."""
    if not digits:
        return np.zeros(0, dtype=bool)
    width = max(len(d) for d in digits)
    # Right-align into a zero-padded matrix so position parity counts from the check digit.
    padded = (
        np.frombuffer("".join(d.rjust(width, "0") for d in digits).encode("ascii"), dtype=np.uint8)
        .reshape(len(digits), width)
        .astype(np.int64)
        - 48
    )
    not_digit = (padded < 0) | (padded > 9)
    bad = not_digit.any(axis=1)
    if bad.any():
        padded = np.where(not_digit, 0, padded)  # those rows fail below whatever their sum
    ok: npt.NDArray[np.bool_] = (luhn_matrix_sums(padded) % 10 == 0) & ~bad
    return ok


#: ISO 3779 transliteration of VIN letters (I, O and Q never occur) and position weights.
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_ok(vin: str) -> bool:
    """A 17-character VIN whose 9th character is the North American check digit (mod 11,
    ``X`` for 10). European and Asian VINs need not carry one: callers that accept those
    ask for a context word instead."""
    v = vin.upper()
    if len(v) != 17 or any(c not in _VIN_VALUES for c in v):
        return False
    total = sum(_VIN_VALUES[c] * w for c, w in zip(v, _VIN_WEIGHTS, strict=True))
    check = total % 11
    return v[8] == ("X" if check == 10 else str(check))


def imei_ok(digits: str) -> bool:
    """A 15-digit IMEI with its Luhn check digit."""
    return len(digits) == 15 and digits.isdigit() and luhn_ok(digits)
