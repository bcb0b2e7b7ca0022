"""Seeded, labeled corpus for detection benchmarks: short notes, support tickets, addresses
and mixed formats, each with ground-truth character spans.

Names come from several Faker locales; some locales (``HELD_OUT_LOCALES``) are deliberately
absent from the name lists veilflow ships, so the benchmark also shows recall on names the
rules have never seen. Every value is generated; nothing here is real personal data.

    from corpus import generate
    docs = generate(2000, seed=20261127)   # list[Doc]: text + spans [(start, end, entity)]
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from faker import Faker

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

SEED = 20261127

#: Locales for names, phones, addresses and IBANs. The second group is held out.
KNOWN_LOCALES = (
    "en_US",
    "en_GB",
    "de_DE",
    "fr_FR",
    "es_ES",
    "it_IT",
    "nl_NL",
    "pl_PL",
    "pt_BR",
    "en_IN",
)
HELD_OUT_LOCALES = ("sv_SE", "fi_FI", "cs_CZ")

CARD_TYPES = (
    "visa16",
    "visa19",
    "visa13",
    "mastercard",
    "amex",
    "discover",
    "maestro",
    "jcb16",
    "diners",
)
ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "DATE_TIME",
    "LOCATION",
    "ZIP_CODE",
    "US_BANK_NUMBER",
)


@dataclass
class Doc:
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    kind: str = ""
    held_out: bool = False


class _Builder:
    """Appends literal text and labeled values, recording spans."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[tuple[int, int, str]] = []
        self.pos = 0

    def lit(self, s: str) -> _Builder:
        self.parts.append(s)
        self.pos += len(s)
        return self

    def pii(self, s: str, entity: str) -> _Builder:
        self.spans.append((self.pos, self.pos + len(s), entity))
        return self.lit(s)

    def doc(self, kind: str, held_out: bool = False) -> Doc:
        return Doc("".join(self.parts), self.spans, kind, held_out)


class _Rng:
    """The few draws the generator needs, from a seeded numpy Generator."""

    def __init__(self, seed: int) -> None:
        self._g = np.random.default_rng(seed)

    def random(self) -> float:
        return float(self._g.random())

    def randrange(self, n: int) -> int:
        return int(self._g.integers(0, n))

    def randint(self, a: int, b: int) -> int:
        return int(self._g.integers(a, b + 1))

    def choice(self, seq: Sequence[T]) -> T:
        return seq[int(self._g.integers(0, len(seq)))]

    def uniform(self, a: float, b: float) -> float:
        return float(self._g.uniform(a, b))


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = _Rng(seed)
        self.fakers: dict[str, Faker] = {}
        for i, loc in enumerate(KNOWN_LOCALES + HELD_OUT_LOCALES):
            f = Faker(loc)
            f.seed_instance(seed + i)
            self.fakers[loc] = f
        self.us = self.fakers["en_US"]

    def locale(self, held_out_share: float = 0.2) -> str:
        if self.rng.random() < held_out_share:
            return self.rng.choice(HELD_OUT_LOCALES)
        return self.rng.choice(KNOWN_LOCALES)

    def name(self, loc: str) -> str:
        f = self.fakers[loc]
        n = f.first_name() + " " + f.last_name() if self.rng.random() < 0.7 else f.name()
        return n.replace("˜", "")

    def first(self, loc: str) -> str:
        return self.fakers[loc].first_name()

    def email(self, name: str | None = None) -> str:
        r = self.rng.random()
        if name and r < 0.4:
            local = (
                "".join(
                    c
                    for c in name.lower().replace(" ", ".")
                    if c.isascii() and (c.isalnum() or c == ".")
                ).strip(".")
                or "user"
            )
            return f"{local}@{self.us.free_email_domain()}"
        return self.us.email() if r < 0.8 else self.us.company_email()

    def phone(self, loc: str | None = None) -> str:
        f = self.fakers[loc or self.rng.choice(KNOWN_LOCALES + HELD_OUT_LOCALES)]
        return f.phone_number()

    def card(self) -> str:
        kind = self.rng.choice(CARD_TYPES)
        raw = self.us.credit_card_number(kind)
        style = self.rng.random()
        if style < 0.34:
            return raw
        sep = " " if style < 0.67 else "-"
        if len(raw) == 15:
            return sep.join((raw[:4], raw[4:10], raw[10:]))
        return sep.join(raw[i : i + 4] for i in range(0, len(raw), 4))

    def iban(self) -> str:
        raw = self.fakers[self.rng.choice(KNOWN_LOCALES + HELD_OUT_LOCALES)].iban()
        if self.rng.random() < 0.5:
            return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))
        return raw

    def ssn(self) -> str:
        s = self.us.ssn()
        r = self.rng.random()
        return s if r < 0.8 else s.replace("-", " ") if r < 0.9 else s.replace("-", "")

    def ip(self) -> str:
        r = self.rng.random()
        return (
            self.us.ipv4_public()
            if r < 0.5
            else self.us.ipv4_private()
            if r < 0.75
            else self.us.ipv6()
        )

    def date(self) -> str:
        d = self.us.date_between("-80y", "today")
        fmt = self.rng.choice(
            ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%B %d, %Y", "%d %b %Y", "%b %d, %Y"]
        )
        return d.strftime(fmt)

    def time(self) -> str:
        return f"{self.rng.randint(8, 18)}:{self.rng.choice(['00', '15', '30', '45'])}"

    def order(self) -> str:
        return self.rng.choice(["#", "ORD-", "A-", ""]) + str(self.rng.randint(1000, 999999))

    def amount(self) -> str:
        return f"{self.rng.randint(5, 4999)}.{self.rng.randint(0, 99):02d}"

    def code(self) -> str:
        return (
            "".join(self.rng.choice(string.ascii_uppercase) for _ in range(3))
            + "-"
            + str(self.rng.randint(100, 9999))
        )


def _note(g: _Gen) -> Doc:
    loc = g.locale()
    b = _Builder()
    name = g.name(loc)
    k = g.rng.randrange(12)
    if k == 0:
        b.lit("Customer ").pii(name, "PERSON").lit(" called from ").pii(
            g.phone(loc), "PHONE_NUMBER"
        )
        b.lit(f" about order {g.order()}; email ").pii(g.email(name), "EMAIL_ADDRESS").lit(".")
    elif k == 1:
        b.lit("Hi ").pii(g.first(loc), "PERSON").lit(", your new phone number ")
        b.pii(g.phone(loc), "PHONE_NUMBER").lit(" is active. Ticket ").lit(g.code()).lit(" closed.")
    elif k == 2:
        b.lit("Spoke with ").pii(name, "PERSON").lit(". New email is ").pii(
            g.email(name), "EMAIL_ADDRESS"
        )
        b.lit(", please update the account.")
    elif k == 3:
        b.lit("Left voicemail at ").pii(g.phone(loc), "PHONE_NUMBER").lit("; ").pii(name, "PERSON")
        b.lit(f" prefers email. Balance due: {g.amount()} EUR.")
    elif k == 4:
        b.lit("Patient ").pii(name, "PERSON").lit(", DOB ").pii(g.date(), "DATE_TIME")
        b.lit(", SSN ").pii(g.ssn(), "US_SSN").lit(", seen by Dr. ")
        b.pii(g.fakers[loc].last_name(), "PERSON").lit(".")
    elif k == 5:
        b.lit("Refund of ").lit(g.amount()).lit(" USD processed to card ").pii(
            g.card(), "CREDIT_CARD"
        )
        b.lit(" for ").pii(name, "PERSON").lit(".")
    elif k == 6:
        b.lit("Wire transfer to IBAN ").pii(g.iban(), "IBAN_CODE").lit(", beneficiary ")
        b.pii(name, "PERSON").lit(f", reference {g.code()}.")
    elif k == 7:
        b.lit("Login from ").pii(g.ip(), "IP_ADDRESS").lit(" flagged for user ")
        b.pii(g.email(name), "EMAIL_ADDRESS").lit(f" after {g.rng.randint(3, 9)} failed attempts.")
    elif k == 8:
        b.lit("Reminder: ").pii(name, "PERSON").lit(" has an appointment on ").pii(
            g.date(), "DATE_TIME"
        )
        b.lit(" at ").pii(g.time(), "DATE_TIME").lit(".")
    elif k == 9:
        b.lit("Direct deposit to account number ")
        b.pii(str(g.rng.randint(10**7, 10**12)), "US_BANK_NUMBER").lit(" for ").pii(name, "PERSON")
        b.lit(" was returned.")
    elif k == 10:
        b.lit("Package arrived damaged; the customer wants a replacement by Friday. Order ")
        b.lit(g.order()).lit(f", {g.rng.randint(1, 12)} items.")
    else:
        b.lit("Please charge card ").pii(g.card(), "CREDIT_CARD").lit(" and send the receipt to ")
        b.pii(g.email(), "EMAIL_ADDRESS").lit(".")
    return b.doc("note", held_out=loc in HELD_OUT_LOCALES)


def _ticket(g: _Gen) -> Doc:
    loc = g.locale()
    b = _Builder()
    name = g.name(loc)
    b.lit(f"Ticket {g.code()} opened by ").pii(name, "PERSON").lit(" <")
    b.pii(g.email(name), "EMAIL_ADDRESS").lit(">.\n")
    k = g.rng.randrange(5)
    if k == 0:
        b.lit("Caller says the card ").pii(g.card(), "CREDIT_CARD").lit(" was charged twice on ")
        b.pii(g.date(), "DATE_TIME").lit(". Callback: ").pii(g.phone(loc), "PHONE_NUMBER").lit(".")
    elif k == 1:
        b.lit("Cannot log in since ").pii(g.date(), "DATE_TIME").lit("; last login from ")
        b.pii(g.ip(), "IP_ADDRESS").lit(f". Version {g.rng.randint(1, 9)}.{g.rng.randint(0, 20)}.")
    elif k == 2:
        b.lit("Please verify SSN ").pii(g.ssn(), "US_SSN").lit(" and bank account ")
        b.pii(str(g.rng.randint(10**7, 10**12)), "US_BANK_NUMBER").lit(" before payout of ")
        b.lit(g.amount()).lit(".")
    elif k == 3:
        other = g.name(g.locale())
        b.lit("Escalated to ").pii(other, "PERSON").lit(". Mobile: ").pii(
            g.phone(loc), "PHONE_NUMBER"
        )
        b.lit(f". Priority {g.rng.randint(1, 4)}.")
    else:
        b.lit("Refund to IBAN ").pii(g.iban(), "IBAN_CODE").lit(" requested; contact ")
        b.pii(g.first(loc), "PERSON").lit(" at ").pii(g.phone(loc), "PHONE_NUMBER").lit(".")
    return b.doc("ticket", held_out=loc in HELD_OUT_LOCALES)


def _address(g: _Gen) -> Doc:
    b = _Builder()
    if g.rng.random() < 0.5:
        f = g.us
        name = g.name("en_US")
        b.lit("Ship to: ").pii(name, "PERSON").lit(", ").pii(f.street_address(), "LOCATION").lit(
            ", "
        )
        b.pii(f.city(), "LOCATION").lit(", ").pii(
            f.state_abbr(include_territories=False), "LOCATION"
        )
        b.lit(" ").pii(f.zipcode(), "ZIP_CODE").lit(".")
        if g.rng.random() < 0.5:
            b.lit(" Phone ").pii(g.phone("en_US"), "PHONE_NUMBER").lit(".")
        return b.doc("address")
    loc = g.locale(0.25)
    f = g.fakers[loc]
    name = g.name(loc)
    lead = g.rng.choice(["Address: ", "New address for ", "Moved: "])
    if lead == "New address for ":
        b.lit(lead).pii(name, "PERSON").lit(" is ")
    else:
        b.lit(lead).pii(name, "PERSON").lit(", ")
    b.pii(f.street_address().replace("\n", " "), "LOCATION").lit(", ").pii(f.postcode(), "ZIP_CODE")
    b.lit(" ").pii(f.city(), "LOCATION").lit(", ").pii(g.us.country(), "LOCATION").lit(".")
    return b.doc("address", held_out=loc in HELD_OUT_LOCALES)


def _mixed(g: _Gen) -> Doc:
    loc = g.locale()
    b = _Builder()
    name = g.name(loc)
    k = g.rng.randrange(5)
    if k == 0:
        b.pii(name, "PERSON").lit(" (").pii(g.phone(loc), "PHONE_NUMBER").lit(", ")
        b.pii(g.phone(), "PHONE_NUMBER").lit(") lives in ").pii(g.fakers[loc].city(), "LOCATION")
        b.lit(".")
    elif k == 1:
        b.lit("Cards on file: ").pii(g.card(), "CREDIT_CARD").lit(" and ").pii(
            g.card(), "CREDIT_CARD"
        )
        b.lit(f"; limit {g.amount()}.")
    elif k == 2:
        b.lit("From: ").pii(name, "PERSON").lit(" <").pii(g.email(name), "EMAIL_ADDRESS")
        b.lit(">\nSent: ").pii(g.date(), "DATE_TIME").lit("\nPlease call me back on ")
        b.pii(g.phone(loc), "PHONE_NUMBER").lit(". Thanks, ").pii(g.first(loc), "PERSON")
    elif k == 3:
        b.lit("Emergency contact: ").pii(name, "PERSON").lit(", ").pii(g.phone(loc), "PHONE_NUMBER")
        b.lit(", born ").pii(g.date(), "DATE_TIME").lit(" in ").pii(
            g.fakers[loc].city(), "LOCATION"
        )
        b.lit(".")
    else:
        b.lit("Server log: user ").pii(g.email(), "EMAIL_ADDRESS").lit(" from ").pii(
            g.ip(), "IP_ADDRESS"
        )
        b.lit(f" got error {g.rng.randint(400, 599)} after {g.rng.randint(1, 900)} ms.")
    return b.doc("mixed", held_out=loc in HELD_OUT_LOCALES)


def _unseen(g: _Gen) -> Doc:
    """Templates written after veilflow's rules were tuned, and never tuned against: chat
    lines, signatures, HR and clinical shorthand, key-value dumps."""
    loc = g.locale()
    f = g.fakers[loc]
    b = _Builder()
    name = g.name(loc)
    k = g.rng.randrange(10)
    if k == 0:
        b.lit("[").pii(g.time(), "DATE_TIME").lit("] agent: hello, who am I speaking with?\n[")
        b.pii(g.time(), "DATE_TIME").lit("] user: this is ")
        b.pii(name, "PERSON").lit(", my number is ").pii(g.phone(loc), "PHONE_NUMBER")
    elif k == 1:
        b.lit("Best regards,\n").pii(name, "PERSON").lit("\nSenior Analyst | Tel. ")
        b.pii(g.phone(loc), "PHONE_NUMBER").lit(" | ").pii(g.email(name), "EMAIL_ADDRESS")
    elif k == 2:
        b.lit("HR: employee ").pii(name, "PERSON").lit(" (start date ").pii(g.date(), "DATE_TIME")
        b.lit(f") requested {g.rng.randint(2, 20)} days leave; salary to ").pii(
            g.iban(), "IBAN_CODE"
        )
    elif k == 3:
        b.lit("pt c/o chest pain since ").pii(g.date(), "DATE_TIME").lit(". referred by dr ")
        b.pii(f.last_name(), "PERSON").lit(
            f". bp {g.rng.randint(100, 160)}/{g.rng.randint(60, 99)}."
        )
    elif k == 4:
        b.lit("name=").pii(name, "PERSON").lit("; email=").pii(g.email(), "EMAIL_ADDRESS")
        b.lit("; ip=").pii(g.ip(), "IP_ADDRESS").lit("; ssn=").pii(g.ssn(), "US_SSN")
    elif k == 5:
        other = g.name(g.locale())
        b.lit("Meeting between ").pii(name, "PERSON").lit(" and ").pii(other, "PERSON")
        b.lit(" moved to ").pii(g.date(), "DATE_TIME").lit(", location ").pii(f.city(), "LOCATION")
        b.lit(".")
    elif k == 6:
        b.lit("Payment failed: card=").pii(g.card(), "CREDIT_CARD").lit(" holder=")
        b.pii(name, "PERSON").lit(f" amount={g.amount()}")
    elif k == 7:
        b.lit("Delivered to ").pii(name, "PERSON").lit(" at ").pii(
            g.us.street_address(), "LOCATION"
        )
        b.lit(", ").pii(g.us.city(), "LOCATION").lit(". Signed by ").pii(g.first(loc), "PERSON")
        b.lit(".")
    elif k == 8:
        b.lit("I, ").pii(name, "PERSON").lit(", born ").pii(g.date(), "DATE_TIME")
        b.lit(", authorize debit of account ").pii(
            str(g.rng.randint(10**8, 10**12)), "US_BANK_NUMBER"
        )
        b.lit(".")
    else:
        b.lit("fwd from ").pii(g.email(name), "EMAIL_ADDRESS").lit(": pls call ")
        b.pii(g.first(loc), "PERSON").lit(" back asap on ").pii(g.phone(loc), "PHONE_NUMBER")
    return b.doc("unseen", held_out=loc in HELD_OUT_LOCALES)


def _holdout(g: _Gen) -> Doc:
    """A last set of templates, measured once after all tuning and never tuned against:
    insurance claims, travel bookings, school and bank letters, CRM exports."""
    loc = g.locale()
    f = g.fakers[loc]
    b = _Builder()
    name = g.name(loc)
    k = g.rng.randrange(10)
    if k == 0:
        b.lit("Claim filed by policyholder ").pii(name, "PERSON").lit(" for an accident on ")
        b.pii(g.date(), "DATE_TIME").lit(" near ").pii(f.city(), "LOCATION").lit(".")
    elif k == 1:
        b.lit("Booking confirmed for ").pii(name, "PERSON").lit(", passport holder, arriving ")
        b.pii(g.date(), "DATE_TIME").lit(". Contact e-mail: ").pii(g.email(name), "EMAIL_ADDRESS")
    elif k == 2:
        b.lit("Dear parent of ").pii(g.first(loc), "PERSON").lit(
            ", please phone the school office on "
        )
        b.pii(g.phone(loc), "PHONE_NUMBER").lit(".")
    elif k == 3:
        b.lit("Your statement for IBAN ").pii(g.iban(), "IBAN_CODE").lit(" is ready, ")
        b.pii(name, "PERSON").lit(".")
    elif k == 4:
        b.pii(name, "PERSON").lit(";").pii(g.email(), "EMAIL_ADDRESS").lit(";")
        b.pii(g.phone(loc), "PHONE_NUMBER").lit(";").pii(f.city(), "LOCATION")
    elif k == 5:
        b.lit("Our courier could not reach ").pii(g.us.street_address(), "LOCATION").lit(" in ")
        b.pii(g.us.city(), "LOCATION").lit(" today; call ").pii(g.phone("en_US"), "PHONE_NUMBER")
    elif k == 6:
        b.lit("Card ").pii(g.card(), "CREDIT_CARD").lit(" reported stolen by ").pii(name, "PERSON")
        b.lit(" from IP ").pii(g.ip(), "IP_ADDRESS").lit(".")
    elif k == 7:
        b.lit("Tenant ").pii(name, "PERSON").lit(" (SSN ").pii(g.ssn(), "US_SSN")
        b.lit(f") owes {g.amount()} since ").pii(g.date(), "DATE_TIME").lit(".")
    elif k == 8:
        other = g.name(g.locale())
        b.lit("Witnesses: ").pii(name, "PERSON").lit(", ").pii(other, "PERSON").lit(".")
    else:
        b.lit("Reset link sent to ").pii(g.email(name), "EMAIL_ADDRESS").lit(" for ")
        b.pii(name, "PERSON").lit(f" at {g.rng.randint(1, 12)} pm.")
    return b.doc("holdout", held_out=loc in HELD_OUT_LOCALES)


def generate(n: int, seed: int = SEED, unseen: bool = False, holdout: bool = False) -> list[Doc]:
    """``n`` labeled documents: 45% notes, 25% tickets, 15% addresses, 15% mixed formats;
    with ``unseen`` / ``holdout``, only the templates in ``_unseen`` / ``_holdout``."""
    g = _Gen(seed)
    docs = []
    for _ in range(n):
        if unseen or holdout:
            docs.append(_holdout(g) if holdout else _unseen(g))
            continue
        r = g.rng.random()
        make = _note if r < 0.45 else _ticket if r < 0.7 else _address if r < 0.85 else _mixed
        docs.append(make(g))
    return docs


def short_notes(n: int, seed: int = SEED) -> list[str]:
    """``n`` short notes (one to two sentences) for throughput measurements."""
    g = _Gen(seed)
    return [_note(g).text for _ in range(n)]


# --- tables for column classification -------------------------------------------------------


def patients_frame(n: int = 500, seed: int = SEED) -> tuple[pd.DataFrame, dict[str, str | None]]:
    """A differently named table: (frame, expected entity per column; None = not PII)."""
    import pandas as pd

    g = _Gen(seed)
    f = g.us
    rows = []
    for i in range(n):
        loc = g.locale(0.1)
        name = g.name(loc)
        rows.append(
            {
                "pt_id": str(100000 + i),
                "mrn": f"MRN{g.rng.randint(10**6, 10**7 - 1)}",
                "pt_name": name,
                "dob": f.date_of_birth(minimum_age=0, maximum_age=99).isoformat(),
                "sex": g.rng.choice(["female", "male"]),
                "contact_no": g.phone(loc),
                "mail": g.email(name),
                "home_addr": f.street_address(),
                "town": f.city(),
                "postal": f.zipcode(),
                "social_sec": f.ssn(),
                "payment_card": g.card(),
                "bank_iban": g.iban(),
                "account_no": str(g.rng.randint(10**9, 10**10 - 1)),
                "last_ip": g.ip(),
                "admitted_at": f.date_time_between("-3y").isoformat(sep=" "),
                "ward": g.rng.choice(["A1", "B2", "C3", "ICU", "ER"]),
                "bill_total": g.amount(),
                "clinician_notes": (
                    f"Pt {name} seen; callback {g.phone(loc)}."
                    if g.rng.random() < 0.5
                    else f"Follow-up in {g.rng.randint(1, 8)} weeks, no change."
                ),
            }
        )
    expected: dict[str, str | None] = {
        "pt_id": "IDENTIFIER",
        "mrn": "MEDICAL_RECORD_NUMBER",
        "pt_name": "PERSON",
        "dob": "DATE_TIME",
        "sex": None,
        "contact_no": "PHONE_NUMBER",
        "mail": "EMAIL_ADDRESS",
        "home_addr": "LOCATION",
        "town": "LOCATION",
        "postal": "ZIP_CODE",
        "social_sec": "US_SSN",
        "payment_card": "CREDIT_CARD",
        "bank_iban": "IBAN_CODE",
        "account_no": "US_BANK_NUMBER",
        "last_ip": "IP_ADDRESS",
        "admitted_at": "DATE_TIME",
        "ward": None,
        "bill_total": None,
        "clinician_notes": "FREE_TEXT",
    }
    return pd.DataFrame(rows), expected


#: Expected verdicts for the demo ``customers`` table (``veilflow.pipeline.seed``).
CUSTOMERS_EXPECTED: dict[str, str | None] = {
    "customer_id": "IDENTIFIER",
    "full_name": "PERSON",
    "email": "EMAIL_ADDRESS",
    "phone": "PHONE_NUMBER",
    "ssn": "US_SSN",
    "credit_card": "CREDIT_CARD",
    "birth_date": "DATE_TIME",
    "gender": None,
    "zip": "ZIP_CODE",
    "city": "LOCATION",
    "iban": "IBAN_CODE",
    "ip_address": "IP_ADDRESS",
    "signup_ts": "DATE_TIME",
    "amount": None,
    "diagnosis": None,
    "note": "FREE_TEXT",
}
