"""Identifier values in the shapes they take in real text, drawn from a seeded numpy
Generator: checksums where the real identifier has one (Luhn cards and IMEIs, mod-97
IBANs, VIN check digits, DEA check digits), so a value is as valid as a real one."""

from __future__ import annotations

import ipaddress
import string
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TypeVar

import numpy as np

from veilflow.transform.checksums import iban_check_digits, luhn_check_digit

T = TypeVar("T")

DIGITS = string.digits
UPPER = string.ascii_uppercase
#: VIN letters (I, O and Q are never used) and their transliteration values (ISO 3779).
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_VIN_VALUE = dict(
    zip(
        "ABCDEFGHJKLMNPRSTUVWXYZ",
        (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9),
        strict=True,
    )
)
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
#: Medicare Beneficiary Identifier letters (S, L, O, I, B and Z are never used).
_MBI_LETTERS = "ACDEFGHJKMNPQRTUVWXY"


class Draw:
    """The draws the generator needs, from one seeded numpy Generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def below(self, n: int) -> int:
        return int(self.rng.integers(0, n))

    def between(self, a: int, b: int) -> int:
        """An integer in [a, b], both included."""
        return int(self.rng.integers(a, b + 1))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def pick(self, seq: Sequence[T]) -> T:
        return seq[self.below(len(seq))]

    def digits(self, n: int) -> str:
        return "".join(DIGITS[d] for d in self.rng.integers(0, 10, n))

    def letters(self, n: int, alphabet: str = UPPER) -> str:
        return "".join(alphabet[i] for i in self.rng.integers(0, len(alphabet), n))

    def mask(self, fmt: str) -> str:
        """``#`` → a digit, ``@`` → a capital letter, anything else as it is."""
        return "".join(
            self.digits(1) if c == "#" else self.letters(1) if c == "@" else c for c in fmt
        )


#: Card networks: (prefixes, length, grouping).
CARD_NETWORKS: tuple[tuple[tuple[str, ...], int, tuple[int, ...]], ...] = (
    (("4",), 16, (4, 4, 4, 4)),  # Visa
    (("51", "52", "53", "54", "55", "2221", "2500", "2720"), 16, (4, 4, 4, 4)),  # Mastercard
    (("34", "37"), 15, (4, 6, 5)),  # American Express
    (("6011", "65"), 16, (4, 4, 4, 4)),  # Discover
    (("3528", "3566", "3589"), 16, (4, 4, 4, 4)),  # JCB
    (("36",), 14, (4, 6, 4)),  # Diners Club
)


def card(d: Draw) -> str:
    prefixes, length, groups = d.pick(CARD_NETWORKS)
    prefix = d.pick(prefixes)
    body = prefix + d.digits(length - len(prefix) - 1)
    number = body + luhn_check_digit(body)
    style = d.below(3)
    if style == 0:
        return number
    sep = " " if style == 1 else "-"
    out, pos = [], 0
    for g in groups:
        out.append(number[pos : pos + g])
        pos += g
    return sep.join(out)


def ssn(d: Draw) -> str:
    area = d.between(1, 899)
    area = 667 if area == 666 else area
    parts = (f"{area:03d}", f"{d.between(1, 99):02d}", f"{d.between(1, 9999):04d}")
    sep = d.pick(("-", "-", "-", " ", ""))
    return sep.join(parts)


#: BBAN shapes per country: runs of ``n`` digits, ``a`` capital letters, ``c`` either.
IBAN_BBAN = {
    "AT": "16n",
    "AZ": "4a20c",
    "BE": "12n",
    "CZ": "20n",
    "DE": "18n",
    "ES": "20n",
    "FI": "14n",
    "FR": "23n",
    "GB": "4a14n",
    "HU": "24n",
    "IS": "22n",
    "IT": "1a10n12c",
    "NL": "4a10n",
    "PL": "24n",
    "PT": "21n",
    "SE": "20n",
    "TR": "5n1n16c",
}


def _bban(d: Draw, shape: str) -> str:
    out = []
    num = ""
    for ch in shape:
        if ch.isdigit():
            num += ch
            continue
        n, num = int(num), ""
        out.append(
            d.digits(n)
            if ch == "n"
            else d.letters(n)
            if ch == "a"
            else d.letters(n, UPPER + DIGITS)
        )
    return "".join(out)


def iban(d: Draw, country: str) -> str:
    bban = _bban(d, IBAN_BBAN[country])
    raw = country + iban_check_digits(country, bban) + bban
    if d.chance(0.5):
        return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))
    return raw


def ipv4(d: Draw) -> str:
    first = d.pick((*range(1, 10), *range(11, 100), *range(101, 127), *range(128, 224)))
    return f"{first}.{d.below(256)}.{d.below(256)}.{d.between(1, 254)}"


def ipv6(d: Draw) -> str:
    groups = [d.between(0x2001, 0x2C0F)] + [int(d.rng.integers(0, 0x10000)) for _ in range(7)]
    if d.chance(0.5):  # a run of zero groups, which the short form writes as ::
        start = d.between(2, 5)
        for k in range(start, min(8, start + d.between(1, 3))):
            groups[k] = 0
    addr = ipaddress.IPv6Address(":".join(f"{g:x}" for g in groups))
    return addr.compressed if d.chance(0.7) else addr.exploded


def mac(d: Draw) -> str:
    octets = [f"{int(b):02X}" for b in d.rng.integers(0, 256, 6)]
    sep = d.pick((":", "-"))
    return sep.join(octets)


def imei(d: Draw) -> str:
    body = d.digits(14)
    return body + luhn_check_digit(body)


def vin(d: Draw) -> str:
    chars = [d.pick(_VIN_CHARS) for _ in range(17)]
    chars[9] = d.pick("ABCDEFGHJKLMNPRSTVWXY123456789")  # model year
    total = sum(
        (_VIN_VALUE[c] if c.isalpha() else int(c)) * w
        for c, w in zip(chars, _VIN_WEIGHTS, strict=True)
    )
    check = total % 11
    chars[8] = "X" if check == 10 else str(check)
    return "".join(chars)


def dea_number(d: Draw) -> str:
    """A DEA registration number: two letters, six digits and a check digit."""
    digits = d.digits(6)
    a = int(digits[0]) + int(digits[2]) + int(digits[4])
    b = int(digits[1]) + int(digits[3]) + int(digits[5])
    return d.pick("ABFGM") + d.letters(1) + digits + str((a + 2 * b) % 10)


def mbi(d: Draw) -> str:
    """A Medicare Beneficiary Identifier, as printed on the card (dashes optional)."""
    L = _MBI_LETTERS
    c = [
        d.pick("123456789"),
        d.pick(L),
        d.pick(L + DIGITS),
        d.digits(1),
        d.pick(L),
        d.pick(L + DIGITS),
        d.digits(1),
        d.pick(L),
        d.pick(L),
        d.digits(1),
        d.digits(1),
    ]
    raw = "".join(c)
    return f"{raw[:4]}-{raw[4:7]}-{raw[7:]}" if d.chance(0.5) else raw


def day(d: Draw, start: date, end: date) -> date:
    return start + timedelta(days=d.below((end - start).days + 1))


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
