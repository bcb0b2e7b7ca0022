"""Deterministic demo data for the restricted zone: a realistic ``customers`` table, and
``orders`` referring to it (the two-table dataset of policies/shop.yaml).

Faker (seeded) builds small pools of names, cities, IBANs, ...; numpy (seeded) combines them
per row, so a million rows take seconds, not minutes, and the same seed gives the same table.
The free-text ``note`` column carries names, emails and phone numbers, as real support notes do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import psycopg
from faker import Faker
from psycopg import sql

from veilflow.transform.checksums import luhn_matrix_sums
from veilflow.zones.copy_io import write_frame

log = logging.getLogger(__name__)

CUSTOMERS_DDL = """
CREATE TABLE {table} (
  customer_id  bigint PRIMARY KEY,
  full_name    text NOT NULL,
  email        text NOT NULL,
  phone        text,
  ssn          text,
  credit_card  text,
  birth_date   date NOT NULL,
  gender       text NOT NULL,
  zip          text NOT NULL,
  city         text NOT NULL,
  iban         text,
  ip_address   text,
  signup_ts    timestamptz NOT NULL,
  amount       numeric(12, 2) NOT NULL,
  diagnosis    text,
  note         text
)"""

DIAGNOSES = [
    "hypertension",
    "type 2 diabetes",
    "asthma",
    "migraine",
    "depression",
    "osteoarthritis",
    "hypothyroidism",
    "anxiety disorder",
    "GERD",
    "eczema",
    "none",
    "none",
    "none",
]
DOMAINS = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "example.org",
    "proton.me",
    "icloud.com",
    "acme-corp.com",
    "fastmail.com",
]
NOTES = [
    "Customer {name} called about a refund; call back on {phone}.",
    "Spoke with {name}. New email is {email}, please update the account.",
    "{name} reported a damaged parcel. Contact: {email} / {phone}.",
    "Follow-up scheduled with {other} regarding the invoice dispute.",
    "Left voicemail at {phone}; {name} prefers email ({email}).",
    "Card ending in {last4} was declined twice, {name} will retry tomorrow.",
    "Address change requested by {name}, confirmed via {email}.",
    "No action needed.",
]


class _Pools:
    def __init__(self, seed: int) -> None:
        fake = Faker("en_US")
        fake.seed_instance(seed)
        self.first = np.array(sorted({fake.first_name() for _ in range(3000)}), dtype=object)
        self.last = np.array(sorted({fake.last_name() for _ in range(3000)}), dtype=object)
        places = {(fake.city(), fake.zipcode()) for _ in range(800)}
        self.city = np.array([p[0] for p in sorted(places)], dtype=object)
        self.zip = np.array([p[1] for p in sorted(places)], dtype=object)
        fake_de = Faker("de_DE")
        fake_de.seed_instance(seed)
        self.iban = np.array([fake_de.iban() for _ in range(5000)], dtype=object)


def _digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return rng.integers(0, 10, size=(n, width), dtype=np.int8)


def _luhn_cards(rng: np.random.Generator, n: int) -> np.ndarray:
    """16-digit Luhn-valid card numbers (Visa 4…, Mastercard 51–55 and 2221–2720)."""
    body = _digits(rng, n, 15)
    kind = rng.integers(0, 3, size=n)
    body[kind == 0, 0] = 4
    mc = kind == 1
    body[mc, 0] = 5
    body[mc, 1] = rng.integers(1, 6, size=int(mc.sum()))
    mc2 = kind == 2
    two = rng.integers(2221, 2721, size=int(mc2.sum()))
    for i, p in enumerate((1000, 100, 10, 1)):
        body[mc2, i] = (two // p) % 10
    # The check digit, solved for from the number with a 0 in its place.
    digits = np.concatenate([body, np.zeros((n, 1), dtype=np.int8)], axis=1)
    digits[:, -1] = (-luhn_matrix_sums(digits)) % 10
    return np.array(["".join(map(str, row)) for row in digits], dtype=object)


def customers_frame(start: int, rows: int, seed: int, pools: _Pools) -> pd.DataFrame:
    """Rows ``start .. start+rows-1`` of the demo table (deterministic per seed and start)."""
    rng = np.random.default_rng([seed, start])
    n = rows
    ids = np.arange(start, start + n, dtype=np.int64)
    first = pools.first[rng.integers(0, len(pools.first), n)]
    last = pools.last[rng.integers(0, len(pools.last), n)]
    name = pd.Series(first) + " " + pd.Series(last)
    email = (
        pd.Series(first).str.lower()
        + "."
        + pd.Series(last).str.lower().str.replace(r"[^a-z]", "", regex=True)
        + pd.Series(rng.integers(1, 9999, n)).astype(str)
        + "@"
        + pd.Series(np.array(DOMAINS, dtype=object)[rng.integers(0, len(DOMAINS), n)])
    )
    area = pd.Series(rng.integers(201, 990, n)).astype(str)
    mid = pd.Series(rng.integers(200, 999, n)).astype(str)
    end = pd.Series(rng.integers(0, 10000, n)).astype(str).str.zfill(4)
    style = rng.integers(0, 3, n)
    phone = pd.Series(
        np.where(
            style == 0,
            "(" + area + ") " + mid + "-" + end,
            np.where(
                style == 1, area + "-" + mid + "-" + end, "+1 " + area + " " + mid + " " + end
            ),
        )
    )
    ssn_area = rng.integers(1, 900, n)
    ssn_area = np.where(ssn_area == 666, 667, ssn_area)
    ssn = (
        pd.Series(ssn_area).astype(str).str.zfill(3)
        + "-"
        + pd.Series(rng.integers(1, 100, n)).astype(str).str.zfill(2)
        + "-"
        + pd.Series(rng.integers(1, 10000, n)).astype(str).str.zfill(4)
    )
    cards = pd.Series(_luhn_cards(rng, n))
    sep = rng.integers(0, 3, n)
    grouped = cards.str[0:4] + "-" + cards.str[4:8] + "-" + cards.str[8:12] + "-" + cards.str[12:16]
    spaced = grouped.str.replace("-", " ")
    card = pd.Series(np.where(sep == 0, cards, np.where(sep == 1, grouped, spaced)))
    birth = np.datetime64("1940-01-01") + rng.integers(0, 65 * 365, n).astype("timedelta64[D]")
    place = rng.integers(0, len(pools.city), n)
    ip = (
        pd.Series(rng.integers(1, 224, n)).astype(str)
        + "."
        + pd.Series(rng.integers(0, 256, n)).astype(str)
        + "."
        + pd.Series(rng.integers(0, 256, n)).astype(str)
        + "."
        + pd.Series(rng.integers(1, 255, n)).astype(str)
    )
    signup = np.datetime64("2018-01-01T00:00:00") + rng.integers(0, 8 * 365 * 86400, n).astype(
        "timedelta64[s]"
    )
    amount = pd.Series(rng.gamma(2.0, 60.0, n).round(2)).map("{:.2f}".format)
    other = (
        pd.Series(pools.first[rng.integers(0, len(pools.first), n)])
        + " "
        + pd.Series(pools.last[rng.integers(0, len(pools.last), n)])
    )
    tmpl = rng.integers(0, len(NOTES), n)
    notes = pd.Series(np.array(NOTES, dtype=object)[tmpl])
    note = pd.Series(
        [
            t.format(name=a, phone=b, email=c, other=d, last4=e)
            for t, a, b, c, d, e in zip(
                notes, name, phone, email, other, cards.str[-4:], strict=True
            )
        ]
    )
    has_note = rng.random(n) < 0.7
    return pd.DataFrame(
        {
            "customer_id": ids.astype(str),
            "full_name": name,
            "email": email,
            "phone": phone.where(rng.random(n) < 0.95, None),
            "ssn": ssn.where(rng.random(n) < 0.9, None),
            "credit_card": card.where(rng.random(n) < 0.8, None),
            "birth_date": pd.Series(birth.astype(str)),
            "gender": pd.Series(
                np.array(["F", "M", "X"], dtype=object)[rng.choice(3, n, p=[0.49, 0.49, 0.02])]
            ),
            "zip": pd.Series(pools.zip[place]),
            "city": pd.Series(pools.city[place]),
            "iban": pd.Series(pools.iban[rng.integers(0, len(pools.iban), n)]).where(
                rng.random(n) < 0.6, None
            ),
            "ip_address": ip,
            "signup_ts": pd.Series(signup.astype(str)).str.replace("T", " ") + "+00",
            "amount": amount,
            "diagnosis": pd.Series(
                np.array(DIAGNOSES, dtype=object)[rng.integers(0, len(DIAGNOSES), n)]
            ),
            "note": note.where(has_note, None),
        }
    )


def iter_customers(rows: int, seed: int = 42, batch: int = 100_000) -> Iterator[pd.DataFrame]:
    pools = _Pools(seed)
    for start in range(1, rows + 1, batch):
        yield customers_frame(start, min(batch, rows + 1 - start), seed, pools)


def seed_customers(
    conn: psycopg.Connection,
    rows: int = 100_000,
    seed: int = 42,
    table: str = "restricted.customers",
    progress: Callable[[int], None] | None = None,
) -> int:
    """(Re)create ``table`` with ``rows`` deterministic rows, through COPY."""
    schema, name = table.split(".")
    ident = sql.Identifier(schema, name)
    with conn.transaction():
        # CASCADE: a seeded orders table's foreign key refers to this table; seed_orders
        # recreates it.
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(ident))
        conn.execute(sql.SQL(CUSTOMERS_DDL).format(table=ident))
        written = 0
        for frame in iter_customers(rows, seed):
            written += write_frame(conn, ident, frame)
            if progress:
                progress(written)
        if schema == "restricted":
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO veilflow_pipeline, veilflow_steward").format(ident)
            )
        conn.execute(sql.SQL("ANALYZE {}").format(ident))
    return written


def append_customers(
    conn: psycopg.Connection,
    rows: int,
    seed: int = 42,
    table: str = "restricted.customers",
) -> int:
    """Add ``rows`` deterministic rows past the table's highest ``customer_id`` (a source
    that grows, for incremental runs). Returns the rows added."""
    schema, name = table.split(".")
    ident = sql.Identifier(schema, name)
    with conn.transaction():
        row = conn.execute(sql.SQL("SELECT coalesce(max(customer_id), 0) FROM {}").format(ident))
        found = row.fetchone()
        start = int(found[0]) + 1 if found else 1
        written = 0
        pools = _Pools(seed)
        for lo in range(start, start + rows, 100_000):
            n = min(100_000, start + rows - lo)
            written += write_frame(conn, ident, customers_frame(lo, n, seed, pools))
    return written


ORDERS_DDL = """
CREATE TABLE {table} (
  order_id     bigint PRIMARY KEY,
  customer_id  bigint NOT NULL REFERENCES {customers} (customer_id),
  ordered_at   timestamptz NOT NULL,
  amount       numeric(12, 2) NOT NULL,
  status       text NOT NULL,
  ship_zip     text NOT NULL
)"""

ORDER_STATUSES = ["placed", "shipped", "delivered", "returned", "cancelled"]


def orders_frame(customers: np.ndarray, zips: np.ndarray, seed: int) -> pd.DataFrame:
    """Orders of ``customers`` (ids, with their zips): 0 to ~8 each (Poisson, mean 2),
    numbered in customer order; the same customers and seed give the same orders."""
    rng = np.random.default_rng([seed, 7_919])
    per = rng.poisson(2.0, len(customers))
    owner = np.repeat(customers, per)
    n = len(owner)
    placed = np.datetime64("2019-01-01T00:00:00") + rng.integers(0, 7 * 365 * 86400, n).astype(
        "timedelta64[s]"
    )
    # Most orders ship to the customer's own zip.
    ship = np.where(rng.random(n) < 0.85, np.repeat(zips, per), zips[rng.integers(0, len(zips), n)])
    return pd.DataFrame(
        {
            "order_id": pd.Series(np.arange(1, n + 1, dtype=np.int64)).astype(str),
            "customer_id": pd.Series(owner).astype(str),
            "ordered_at": pd.Series(placed.astype(str)).str.replace("T", " ") + "+00",
            "amount": pd.Series(rng.gamma(2.0, 40.0, n).round(2)).map("{:.2f}".format),
            "status": pd.Series(
                np.array(ORDER_STATUSES, dtype=object)[
                    rng.choice(len(ORDER_STATUSES), n, p=[0.1, 0.15, 0.6, 0.1, 0.05])
                ]
            ),
            "ship_zip": pd.Series(ship),
        }
    )


def seed_orders(
    conn: psycopg.Connection,
    seed: int = 42,
    table: str = "restricted.orders",
    customers: str = "restricted.customers",
) -> int:
    """(Re)create ``table`` with deterministic orders of the customers in ``customers``,
    its ``customer_id`` a foreign key to theirs, through COPY. Returns the rows written."""
    ident = sql.Identifier(*table.split("."))
    parent = sql.Identifier(*customers.split("."))
    with conn.transaction():
        rows = conn.execute(
            sql.SQL("SELECT customer_id, zip FROM {} ORDER BY customer_id").format(parent)
        ).fetchall()
        frame = orders_frame(
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=object),
            seed,
        )
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        conn.execute(sql.SQL(ORDERS_DDL).format(table=ident, customers=parent))
        written = write_frame(conn, ident, frame)
        if table.startswith("restricted."):
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO veilflow_pipeline, veilflow_steward").format(ident)
            )
        conn.execute(sql.SQL("ANALYZE {}").format(ident))
    return written
