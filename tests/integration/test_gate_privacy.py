"""Risk measured in PostgreSQL agrees with the hand-computed figures; suppression deletes
exactly the rows of classes smaller than k and leaves canaries alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest

from veilflow.errors import SourceError
from veilflow.validate.file_risk import frame_risk
from veilflow.validate.privacy import (
    PARALLEL_AGGREGATE,
    suppress_small_classes,
    table_risk,
)

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


@pytest.fixture
def partitioned(conn: psycopg.Connection) -> str:
    """A candidate-shaped table: range-partitioned by ``_vf_row``, canary column last."""
    conn.execute(
        "CREATE TABLE staging.part (_vf_row bigint NOT NULL, zip text, age text, disease text,"
        " note text, _vf_canary boolean NOT NULL DEFAULT false) PARTITION BY RANGE (_vf_row)"
    )
    conn.execute("CREATE TABLE staging.part_1 PARTITION OF staging.part FOR VALUES FROM (1) TO (5)")
    conn.execute("CREATE TABLE staging.part_2 PARTITION OF staging.part FOR VALUES FROM (5) TO (9)")
    conn.execute(
        "CREATE TABLE staging.part_3 PARTITION OF staging.part FOR VALUES FROM (9) TO (20000)"
    )
    return "staging.part"


def test_null_classes_and_values_in_sql(conn: psycopg.Connection, partitioned: str) -> None:
    """Classes (a,1) = {x, y, y}, (NULL,1) = {x, NULL}, (a,NULL) = {x, x}, spread over the
    partitions; a canary that would add a class of one is left out. k = 2, l = 1."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO staging.part (_vf_row, zip, age, disease, _vf_canary)"
            " VALUES (%s, %s, %s, %s, %s)",
            [
                (1, "a", "1", "x", False),
                (5, "a", "1", "y", False),
                (9, "a", "1", "y", False),
                (2, None, "1", "x", False),
                (6, None, "1", None, False),
                (3, "a", None, "x", False),
                (10, "a", None, "x", False),
                (11, "z", "9", "canary", True),
            ],
        )
    for with_t in (False, True):
        m = table_risk(conn, partitioned, ["zip", "age"], "disease", with_t=with_t)
        assert (m.rows, m.classes, m.k, m.l) == (7, 3, 2, 1)
        assert m.class_sizes == {3: 1, 2: 2}
    m = table_risk(conn, partitioned, ["zip", "age"], with_t=False)
    assert (m.k, m.l, m.class_sizes) == (2, None, {3: 1, 2: 2})


@pytest.fixture
def parallel_plans(conn: psycopg.Connection) -> psycopg.Connection:
    """The session plans every scan in parallel, even of a few kilobytes."""
    conn.execute("SET min_parallel_table_scan_size = 0")
    conn.execute("SET parallel_setup_cost = 0")
    conn.execute("SET max_parallel_workers_per_gather = 2")
    return conn


def test_parallel_aggregate_is_exact(parallel_plans: psycopg.Connection, partitioned: str) -> None:
    """With the first GROUP BY split over workers (Partial + Finalize HashAggregate) the
    figures equal a count done in pandas on the same rows."""
    conn = parallel_plans
    rng = np.random.default_rng(11)
    n = 6000

    def values(choices: list[str | None]) -> list[str | None]:
        return [choices[i] for i in rng.integers(0, len(choices), n)]

    rows = list(
        zip(
            range(1, n + 1),
            values(["0****", "1****", "2****", None]),
            values([str(y) for y in range(1950, 1962)]),
            values(["flu", "gastritis", "bronchitis", "none", None]),
            strict=True,
        )
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO staging.part (_vf_row, zip, age, disease) VALUES (%s, %s, %s, %s)", rows
        )
    conn.execute("ANALYZE staging.part")
    plan = "\n".join(
        r[0]
        for r in conn.execute(
            "EXPLAIN SELECT zip, age, count(*) FROM staging.part GROUP BY zip, age, disease"
        ).fetchall()
    )
    assert "Partial HashAggregate" in plan and "Gather" in plan  # the path under test
    frame = pd.DataFrame(rows, columns=["_vf_row", "zip", "age", "disease"])
    sizes = frame.groupby(["zip", "age"], dropna=False).size()
    distinct = frame.groupby(["zip", "age"], dropna=False)["disease"].nunique(dropna=False)
    expected = (
        int(sizes.min()),
        int(distinct.min()),
        {int(s): int(c) for s, c in sizes.value_counts().items()},
    )
    for with_t in (False, True):
        m = table_risk(conn, partitioned, ["zip", "age"], "disease", with_t=with_t)
        assert (m.k, m.l, m.class_sizes) == expected
        assert m.rows == n and m.classes == len(sizes)
    assert table_risk(conn, partitioned, ["zip", "age"], "disease").t == pytest.approx(
        frame_risk(frame, ["zip", "age"], "disease").t
    )


def test_planner_settings_are_put_back(conn: psycopg.Connection, li_table: str) -> None:
    """The parallel-plan settings hold for table_risk's own query only: inside a caller's
    open transaction the values it had come back, also when the query fails, and the
    caller's transaction stays usable."""
    (name,) = PARALLEL_AGGREGATE
    conn.autocommit = False
    try:
        conn.execute(f"SET {name} = 0.5")
        table_risk(conn, li_table, ["zip", "age"], "disease", with_t=False)
        assert conn.execute(f"SHOW {name}").fetchone() == ("0.5",)
        table_risk(conn, li_table, ["zip", "age"], "disease")
        assert conn.execute(f"SHOW {name}").fetchone() == ("0.5",)
        conn.execute("ALTER TABLE staging.li ADD COLUMN doc json")
        with pytest.raises(psycopg.errors.UndefinedFunction):  # json has no equality
            table_risk(conn, li_table, ["zip", "doc"], "disease", with_t=False)
        assert conn.execute(f"SHOW {name}").fetchone() == ("0.5",)
        assert conn.execute("SELECT count(*) FROM staging.li").fetchone() == (10,)
    finally:
        conn.rollback()
        conn.autocommit = True
    assert table_risk(conn, li_table, ["zip", "age"], "disease", with_t=False).k == 3
