"""Risk measured in PostgreSQL agrees with the hand-computed figures; suppression deletes
exactly the rows of classes smaller than k and leaves canaries alone."""

from __future__ import annotations

import psycopg
import pytest

from veilflow.errors import SourceError
from veilflow.validate.privacy import suppress_small_classes, table_risk

LI_ROWS = [
    ("4767*", "<=40", 3, "gastric ulcer"),
    ("4767*", "<=40", 4, "gastritis"),
    ("4767*", "<=40", 5, "stomach cancer"),
    ("4790*", ">=40", 6, "gastritis"),
    ("4790*", ">=40", 11, "flu"),
    ("4790*", ">=40", 8, "bronchitis"),
    ("476**", "3*", 7, "bronchitis"),
    ("476**", "3*", 9, "pneumonia"),
    ("476**", "3*", 10, "stomach cancer"),
]


@pytest.fixture
def li_table(conn: psycopg.Connection) -> str:
    conn.execute(
        "CREATE TABLE staging.li (zip text, age text, salary integer, disease text,"
        " _vf_canary boolean NOT NULL DEFAULT false)"
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO staging.li (zip, age, salary, disease) VALUES (%s, %s, %s, %s)", LI_ROWS
        )
        # A canary in a class of its own: never published, so never counted.
        cur.execute("INSERT INTO staging.li VALUES ('99999', '1', 1, 'canary', true)")
    return "staging.li"


def test_sql_risk_matches_the_hand_computed_example(
    conn: psycopg.Connection, li_table: str
) -> None:
    """Li et al. (2007): ordered-distance EMD 3/8 for class {3k,4k,5k}, the table's t;
    equal-distance t = 4/9 for the diseases (see tests/unit/test_privacy.py)."""
    m = table_risk(conn, li_table, ["zip", "age"], "salary")
    assert (m.rows, m.classes, m.k, m.l, m.distance) == (9, 3, 3, 3, "ordered")
    assert m.t == pytest.approx(0.375)
    m = table_risk(conn, li_table, ["zip", "age"], "disease")
    assert m.distance == "equal" and m.t == pytest.approx(4 / 9)
    kl = table_risk(conn, li_table, ["zip", "age"], "disease", with_t=False)
    assert (kl.k, kl.l, kl.t, kl.class_sizes) == (3, 3, None, {3: 3})


def test_two_anonymous_not_two_diverse_in_sql(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE staging.h (zip text, age text, disease text)")
    conn.execute(
        "INSERT INTO staging.h VALUES ('476**','2*','heart'),('476**','2*','heart'),"
        "('4790*','>=40','flu'),('4790*','>=40','cancer')"
    )
    m = table_risk(conn, "staging.h", ["zip", "age"], "disease", with_t=False)
    assert (m.k, m.l) == (2, 1)


def test_suppression_deletes_exactly_the_small_classes(
    conn: psycopg.Connection, li_table: str
) -> None:
    """On zip after moving salaries 3k to 'a' and 6k, 11k to 'b' the classes are
    a:1, b:2, 4767*:2 (4k, 5k), 4790*:1 (8k), 476**:3; for k = 3 that is 1+2+2+1 = 6 rows."""
    conn.execute("UPDATE staging.li SET zip = 'a' WHERE salary = 3")
    conn.execute("UPDATE staging.li SET zip = 'b' WHERE salary IN (6, 11)")
    # Over the bound: nothing is deleted, the count comes back for the gate to fail on.
    assert suppress_small_classes(conn, li_table, ["zip"], 3, max_rows=5) == 6
    assert conn.execute("SELECT count(*) FROM staging.li").fetchone() == (10,)
    # Within it: the six rows go, the canary (a class of one) stays.
    assert suppress_small_classes(conn, li_table, ["zip"], 3, max_rows=6) == 6
    left = conn.execute(
        "SELECT zip, salary FROM staging.li WHERE NOT _vf_canary ORDER BY salary"
    ).fetchall()
    assert left == [("476**", 7), ("476**", 9), ("476**", 10)]
    assert conn.execute("SELECT count(*) FROM staging.li WHERE _vf_canary").fetchone() == (1,)
    m = table_risk(conn, li_table, ["zip"])
    assert (m.rows, m.k, m.classes) == (3, 3, 1)


def test_missing_table_and_column_are_named(conn: psycopg.Connection, li_table: str) -> None:
    with pytest.raises(SourceError, match="nope"):
        table_risk(conn, "staging.nope", ["zip"])
    with pytest.raises(SourceError, match="zipcode"):
        table_risk(conn, li_table, ["zipcode"])


def test_suppression_on_a_partitioned_candidate_deletes_only_its_victims(
    conn: psycopg.Connection,
) -> None:
    """Candidates are partitioned per chunk, and ctids repeat across partitions."""
    conn.execute(
        "CREATE TABLE staging.p (_vf_row bigint NOT NULL, zip text,"
        " _vf_canary boolean NOT NULL DEFAULT false) PARTITION BY RANGE (_vf_row)"
    )
    conn.execute("CREATE TABLE staging.p1 PARTITION OF staging.p FOR VALUES FROM (1) TO (4)")
    conn.execute("CREATE TABLE staging.p2 PARTITION OF staging.p FOR VALUES FROM (4) TO (7)")
    # Row 1 (first tuple of p1) is alone in its class; row 4 is the first tuple of p2.
    conn.execute(
        "INSERT INTO staging.p (_vf_row, zip) VALUES (1, 'rare'), (2, 'x'), (3, 'x'),"
        " (4, 'y'), (5, 'y'), (6, 'x')"
    )
    assert suppress_small_classes(conn, "staging.p", ["zip"], 2) == 1
    rows = [r[0] for r in conn.execute("SELECT _vf_row FROM staging.p ORDER BY 1").fetchall()]
    assert rows == [2, 3, 4, 5, 6]
