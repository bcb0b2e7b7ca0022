"""Canary records: synthetic rows with known fake personal data, planted in a run's snapshot
at extract and looked for in the candidate by the gate.

A canary is obviously fake yet shaped like the column it sits in, so every operator accepts
it: e-mail ``canary.<hex>@canary.invalid`` (a reserved top-level domain), SSN in the 9xx
area (never issued), IPv4 in TEST-NET-1 (192.0.2.0/24), card numbers with a valid Luhn
digit, other values with the shape of a real value of the column (digits for digits,
letters for letters) but random content. Free-text columns get a sentence that repeats the
canary's own name, e-mail, phone and SSN, so a scrubber that misses them leaks them.
Columns the policy keeps unchanged (not personal data) take the value of a random real
row. Canary keys cannot collide with real ones. Rows carry ``_vf_canary = true`` and are
never published.

Each chunk's gate (:func:`canary_leaks`, ADR 0016) reads the planted values back from the
snapshot, so nothing has to remember them, and looks for each value, in every form the
policy should have removed (as is, digits only, any case), in the chunk's canary outputs:
as a whole value or whole words of an output, not as letters or digits inside a longer
word.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

import psycopg
from psycopg import sql

from veilflow.transform.checksums import luhn_check_digit
from veilflow.validate.privacy import column_types, table_identifier
from veilflow.validate.whole_words import whole_words

log = logging.getLogger(__name__)

CANARY = "_vf_canary"
ROW = "_vf_row"
#: Actions whose output may legitimately contain the input (or where the input is prose
#: whose planted values are checked through the structured columns).
NOT_HIDING = frozenset({"keep", "generalize", "date_shift", "scrub_text"})
#: Shorter values are too common to be evidence of a leak (gender "F", a 3-digit code).
MIN_EVIDENCE_LENGTH = 5

_INT_TYPES = ("smallint", "integer", "bigint")
_NUM_TYPES = ("numeric", "real", "double precision", "money")
_TEXT_TYPES = ("text", "character", "varchar", "citext")


class _Policy(Protocol):
    @property
    def columns(self) -> Mapping[str, Any]: ...


def _ident(table: str | sql.Composable) -> sql.Composable:
    return table_identifier(table) if isinstance(table, str) else table


def _name_of(conn: psycopg.Connection[Any], table: str | sql.Composable) -> str:
    return table if isinstance(table, str) else table.as_string(conn)


# --------------------------------------------------------------------------- value shapes


def _digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


def _shaped_like(template: str) -> str:
    """Random characters with ``template``'s shape: digit→digit, letter→letter (same case),
    everything else kept. Never copies a character of a letter or digit."""
    out = []
    for ch in template:
        if ch.isdigit():
            out.append(secrets.choice(string.digits))
        elif ch.isalpha():
            pool = string.ascii_uppercase if ch.isupper() else string.ascii_lowercase
            out.append(secrets.choice(pool))
        else:
            out.append(ch)
    return "".join(out)


def luhn_complete(digits: str) -> str:
    """``digits`` with its last digit replaced by the Luhn check digit."""
    return digits[:-1] + luhn_check_digit(digits[:-1])


def _with_digits(template: str, digits: str) -> str:
    """``template`` with its digits replaced, in order, by ``digits``."""
    it = iter(digits)
    return "".join(next(it) if ch.isdigit() else ch for ch in template)


def _kind(name: str, spec: Any, template: str | None) -> str:
    """What a text column holds, from the policy's entity/action, its name and a real value."""
    params: dict[str, Any] = dict(getattr(spec, "params", {}) or {})
    entity = str(params.get("entity", "")).upper()
    action = getattr(spec, "action", "")
    lname = name.lower()
    tmpl = template or ""
    if action == "scrub_text" or lname in (
        "note",
        "notes",
        "comment",
        "comments",
        "text",
        "description",
        "message",
    ):
        return "free_text"
    if entity == "EMAIL_ADDRESS" or "email" in lname or re.fullmatch(r"[^@\s]+@[^@\s]+", tmpl):
        return "email"
    if entity == "US_SSN" or "ssn" in lname:
        return "ssn"
    if entity == "CREDIT_CARD" or params.get("luhn") or "card" in lname:
        return "card"
    if (
        entity == "IP_ADDRESS"
        or lname in ("ip", "ip_address", "ipv4")
        or re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", tmpl)
    ):
        return "ip"
    if entity == "PHONE_NUMBER" or "phone" in lname:
        return "phone"
    if entity == "PERSON" or lname.endswith("name"):
        return "person"
    return "shaped"


@lru_cache(maxsize=1)
def _name_pools() -> tuple[list[str], list[str]]:
    """Given names and surnames from Faker's en_US lists (read, never called at random),
    without the names that are also everyday words ("Autumn", "Best", "Will"). A canary
    checks that the policy's operators reached every planted identifier; a name that reads
    as words is a question of detection quality, measured on its own corpus (ADR 0014), and
    as a canary it refused about one run in 250 at random, with nothing for the user to fix."""
    from faker.providers.person.en_US import Provider

    from veilflow.detect.gazetteers import AMBIGUOUS_GIVEN, NOT_NAME

    words = AMBIGUOUS_GIVEN | NOT_NAME
    return (
        [n for n in Provider.first_names if n not in words],
        [n for n in Provider.last_names if n not in words],
    )


def _text_value(kind: str, tag: str, template: str | None) -> str:
    tmpl = template or ""
    n_digits = sum(ch.isdigit() for ch in tmpl)
    if kind == "email":
        return f"canary.{tag}@canary.invalid"
    if kind == "ssn":
        digits = "9" + _digits(8)
        return (
            _with_digits(tmpl, digits)
            if n_digits == 9
            else f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"
        )
    if kind == "card":
        n = n_digits if 12 <= n_digits <= 19 else 16
        digits = luhn_complete("4" + _digits(n - 1))
        return _with_digits(tmpl, digits) if n_digits == n else digits
    if kind == "ip":
        return f"192.0.2.{1 + secrets.randbelow(254)}"
    if kind == "phone":
        # 555-01xx numbers are reserved for fiction in North America.
        digits = "555" + "01" + _digits(2)
        if n_digits >= 7:
            digits = _digits(n_digits - 7) + digits
            return _with_digits(tmpl, digits)
        return f"555-01{digits[-2:]}"
    if kind == "person":
        # A real-looking name, so the test is fair to a detector that knows names.
        first, last = _name_pools()
        return f"{secrets.choice(first)} {secrets.choice(last)}"
    return _shaped_like(tmpl) if tmpl else f"canary-{secrets.token_hex(4)}"


#: The planted entities a free-text canary sentence carries, as the gate finds them again.
FREE_TEXT_PATTERNS = (
    re.compile(r"Canary record [0-9a-f]{8}\. (.+?) called about the account"),
    re.compile(r"canary\.[0-9a-f]{8}@canary\.invalid"),
    re.compile(r"\d*555-01\d\d"),
    re.compile(r"9\d\d-\d\d-\d{4}"),
)


def _free_text(planted: dict[str, str], tag: str) -> str:
    """A support-note-like sentence with the canary's own PII (fresh where the row has none
    of a kind), so a scrubber that misses an entity leaks a known value."""
    person = planted.get("person") or _text_value("person", tag, None)
    email = planted.get("email") or _text_value("email", tag, None)
    phone = planted.get("phone") or _text_value("phone", tag, None)
    ssn = planted.get("ssn") or _text_value("ssn", tag, None)
    return (
        f"Canary record {tag}. {person} called about the account; call back on {phone}."
        f" Confirmation sent to {email}. Verified SSN {ssn}."
    )


def _typed_value(pg_type: str, template: Any, bounds: tuple[Any, Any] | None) -> str | None:
    """A plausible value of a non-text column, as PostgreSQL text input."""
    if pg_type == "boolean":
        return "false"
    if pg_type.startswith(_INT_TYPES):
        lo, hi = bounds if bounds and bounds[0] is not None else (0, 1000)
        return str(int(lo) + secrets.randbelow(max(1, int(hi) - int(lo) + 1)))
    if pg_type.startswith(_NUM_TYPES):
        lo, hi = bounds if bounds and bounds[0] is not None else (0, 1000)
        span = float(hi) - float(lo)
        return f"{float(lo) + span * secrets.randbelow(10_000) / 10_000:.2f}"
    if pg_type == "date":
        return (date(1940, 1, 1) + timedelta(days=secrets.randbelow(65 * 365))).isoformat()
    if pg_type.startswith("timestamp"):
        moment = datetime.now(UTC) - timedelta(seconds=secrets.randbelow(5 * 365 * 86400))
        return moment.isoformat()
    if pg_type == "uuid":
        import uuid

        return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))
    return None if template is None else str(template)


# --------------------------------------------------------------------------- planting


def plant_canaries(
    conn: psycopg.Connection[Any],
    snapshot_table: str | sql.Composable,
    policy: _Policy,
    n: int,
    key_column: str,
    first_row: int | None = None,
) -> int:
    """Insert ``n`` canary rows into the run's snapshot (``_vf_canary = true``), numbered
    ``first_row``, ``first_row + 1``, ... (``_vf_row``) when it is given.

    Returns the number of rows planted. Values are logged nowhere; the snapshot itself is
    the record of what was planted.
    """
    if n <= 0:
        return 0
    table = _ident(snapshot_table)
    types = column_types(conn, _name_of(conn, snapshot_table))
    columns = [c for c in types if c not in (CANARY, ROW)]
    col_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM {} WHERE {} IS NOT TRUE LIMIT 200").format(
                col_list, table, sql.Identifier(CANARY)
            )
        )
        templates = cur.fetchall()
        bounds: dict[str, tuple[Any, Any]] = {}
        numeric = [c for c in columns if types[c].startswith(_INT_TYPES + _NUM_TYPES)]
        if numeric:
            cur.execute(
                sql.SQL("SELECT {} FROM {}").format(
                    sql.SQL(", ").join(
                        sql.SQL("min({c}), max({c})").format(c=sql.Identifier(c)) for c in numeric
                    ),
                    table,
                )
            )
            got = cur.fetchone() or ()
            for i, c in enumerate(numeric):
                bounds[c] = (got[2 * i], got[2 * i + 1]) if got else (None, None)
        keys = _canary_keys(
            cur,
            table,
            key_column,
            types.get(key_column, "text"),
            [t[columns.index(key_column)] for t in templates] if key_column in columns else [],
            bounds.get(key_column),
            n,
        )

    rows: list[list[str | None]] = []
    for i in range(n):
        tag = secrets.token_hex(4)
        template = templates[secrets.randbelow(len(templates))] if templates else None
        planted: dict[str, str] = {}
        values: dict[str, str | None] = {}
        free_text: list[str] = []
        for j, col in enumerate(columns):
            spec = policy.columns.get(col)
            real = None if template is None else template[j]
            if col == key_column:
                values[col] = keys[i]
                continue
            action = getattr(spec, "action", "drop")
            pg_type = types[col]
            if action == "keep":
                values[col] = None if real is None else _text_form(real)
            elif pg_type.startswith(_TEXT_TYPES):
                kind = _kind(col, spec, None if real is None else str(real))
                if kind == "free_text":
                    free_text.append(col)
                    continue
                value = _text_value(kind, tag, None if real is None else str(real))
                planted.setdefault(kind, value)
                values[col] = value
            else:
                values[col] = _typed_value(pg_type, real, bounds.get(col))
        for col in free_text:
            values[col] = _free_text(planted, tag)
        rows.append([values.get(c) for c in columns])

    numbered = first_row is not None
    target = [sql.Identifier(CANARY), *([sql.Identifier(ROW)] if numbered else [])]
    with (
        conn.cursor() as cur,
        cur.copy(
            sql.SQL("COPY {} ({}, {}) FROM STDIN").format(
                table, col_list, sql.SQL(", ").join(target)
            )
        ) as copy,
    ):
        for i, row in enumerate(rows):
            copy.write_row([*row, True, *([first_row + i] if first_row is not None else [])])
    log.info("planted %d canary rows in %s", n, _name_of(conn, snapshot_table))
    return n


def _text_form(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _canary_keys(
    cur: psycopg.Cursor[Any],
    table: sql.Composable,
    key: str,
    pg_type: str,
    samples: list[Any],
    bounds: tuple[Any, Any] | None,
    n: int,
) -> list[str]:
    """``n`` key values that no real row has."""
    if pg_type.startswith(_INT_TYPES):
        top = int(bounds[1]) if bounds and bounds[1] is not None else 0
        return [str(top + 1 + i) for i in range(n)]
    if pg_type == "uuid":
        return [str(_typed_value("uuid", None, None)) for _ in range(n)]
    template = next((str(s) for s in samples if s is not None), None)
    if template is not None and template.isdigit():
        # Digit-string keys continue after the largest real one, keeping their format.
        cur.execute(
            sql.SQL("SELECT max({k}::numeric) FROM {t} WHERE {k} ~ '^[0-9]+$'").format(
                k=sql.Identifier(key), t=table
            )
        )
        row = cur.fetchone()
        top = int(row[0]) if row and row[0] is not None else 0
        return [str(top + 1 + i) for i in range(n)]
    for _ in range(5):
        if template and any(ch.isalnum() for ch in template):
            keys = {_shaped_like(template) for _ in range(n)}
        else:
            keys = {f"canary-{secrets.token_hex(6)}" for _ in range(n)}
        if len(keys) < n:
            continue
        cur.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {}::text = ANY(%s)").format(
                table, sql.Identifier(key)
            ),
            (list(keys),),
        )
        row = cur.fetchone()
        if row and int(row[0]) == 0:
            return sorted(keys)
    return [f"canary-{secrets.token_hex(8)}" for _ in range(n)]


# --------------------------------------------------------------------------- the gate's check


def evidence_forms(value: str) -> set[str]:
    """The forms of a planted value whose presence in the output proves a leak."""
    forms = {value, value.lower()}
    digits = re.sub(r"\D", "", value)
    # Numbers written with separators (SSN, phone, card) also leak as bare digits.
    if len(digits) >= 7 and len(digits) != len(value) and not re.search(r"[^\W\d_]", value):
        forms.add(digits)
    return {f for f in forms if len(f) >= MIN_EVIDENCE_LENGTH}


def _whole_forms(forms: Iterable[str]) -> Callable[[str], re.Match[str] | None]:
    """A search for any of ``forms`` as a whole value or whole words of a text (any case):
    ``Ian Lee`` is not in ``Brian Leeds``, nor a planted number inside a longer one, such as
    a 5-digit zip inside a 16-digit card number. Chance matches like these are not leaks."""
    return whole_words(forms, re.IGNORECASE).search


def canary_leaks(
    planted_rows: Iterable[Mapping[str, str | None]],
    output_rows: Iterable[Iterable[tuple[str, str | None]]],
    hiding_columns: Iterable[str],
    free_text_columns: Iterable[str] = (),
) -> dict[str, int]:
    """The canary test on rows in memory: ``planted_rows`` are the canary rows of the
    snapshot (column -> text), ``output_rows`` the canary rows of the candidate as
    (column, text) pairs. Returns ``"<source>-><output>"`` -> outputs holding a planted
    value, whole or as whole words, in any of its evidence forms."""
    hiding = list(hiding_columns)
    prose = [c for c in free_text_columns if c not in hiding]
    planted: dict[str, set[str]] = {}
    for rec in planted_rows:
        for col in [*hiding, *prose]:
            value = rec.get(col)
            if value is None:
                continue
            if col in prose:
                found = [
                    m.group(m.lastindex or 0) for p in FREE_TEXT_PATTERNS for m in p.finditer(value)
                ]
            else:
                found = [value]
            for v in found:
                planted.setdefault(col, set()).update(evidence_forms(v))
    searches = {col: _whole_forms(forms) for col, forms in planted.items() if forms}
    leaks: dict[str, int] = {}
    for out in output_rows:
        for col, text in out:
            if text is None:
                continue
            for source_col, search in searches.items():
                if search(text) is not None:
                    key = f"{source_col}->{col}"
                    leaks[key] = leaks.get(key, 0) + 1
    return leaks
