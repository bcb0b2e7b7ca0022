"""The releases' exact cells come from one scan of the snapshot shared by the releases; each
release's cells must be what its own ``GROUP BY`` gives. Checked on a small table whose rows
fall in some releases and not others (undeclared and NULL groups, values outside the bins
or bounds, canaries, rows left out as erased), against a plain per-release ``GROUP BY``."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from psycopg import sql

from tests.conftest import DEMO_POLICY
from veilflow.policy import parse_policy
from veilflow.policy.releases import ReleaseSpec
from veilflow.privacy import releases
from veilflow.privacy.releases import exact_cells, key_text

TABLE = sql.Identifier("staging", "cells_src")
KEEP = sql.SQL("_vf_row % 7 <> 0")  # as an erased subject's rows are left out

SPECS = [
    ReleaseSpec(
        name="hist_by_gender",
        statistic="histogram",
        column="amount",
        bins=[0, 25, 100, 1600],
        group_by={"gender": ["F", "M", "X"]},
        epsilon=0.5,
    ),
    ReleaseSpec(
        name="hist_other_bins",
        statistic="histogram",
        column="amount",
        bins=[-20, 500, 1000, 1500.5],
        epsilon=0.5,
    ),
    ReleaseSpec(
        name="diagnoses",
        statistic="count",
        group_by={"diagnosis": ["asthma", "migraine", "none", "not a diagnosis"]},
        epsilon=0.3,
    ),
    ReleaseSpec(
        name="gender_active",
        statistic="count",
        group_by={"gender": ["F", "X"], "active": [True, False]},
        epsilon=0.3,
    ),
    ReleaseSpec(name="everyone", statistic="count", epsilon=0.1),
    ReleaseSpec(
        name="sum_by_age",
        statistic="sum",
        column="amount",
        bounds=(-10, 500),
        group_by={"age": [30, 40, 99]},
        epsilon=0.2,
    ),
    ReleaseSpec(
        name="mean_by_gender",
        statistic="mean",
        column="amount",
        bounds=(0, 1000),
        group_by={"gender": ["F", "M", "X"]},
        epsilon=0.2,
    ),
]


@pytest.fixture
def source(conn: psycopg.Connection) -> psycopg.Connection:
    """3,000 rows and 20 canaries; every column has NULLs and values no release declares."""
    rng = np.random.default_rng(17)
    n = 3_020
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (_vf_row bigint, _vf_canary boolean NOT NULL, gender text,"
            " diagnosis text, age int, active boolean, amount numeric(12, 2))"
        ).format(TABLE)
    )

    def pick(values: list[object], p_null: float = 0.05) -> list[object]:
        chosen = [values[i] for i in rng.integers(0, len(values), n)]
        return [None if rng.random() < p_null else v for v in chosen]

    rows = zip(
        range(1, n + 1),
        [i >= 3_000 for i in range(n)],
        pick(["F", "M", "X", "U"]),
        pick(["asthma", "migraine", "none", "eczema"]),
        pick([30, 40, 50]),
        pick([True, False]),
        [None if rng.random() < 0.05 else round(float(v), 2) for v in rng.uniform(-50, 2000, n)],
        strict=True,
    )
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} FROM STDIN").format(TABLE)) as copy:
        for row in rows:
            copy.write_row(row)
    return conn


def plain_group_by(
    conn: psycopg.Connection, spec: ReleaseSpec
) -> dict[tuple[str, ...], tuple[int, float]]:
    """The release's cells by its own GROUP BY, written out by hand."""
    keys = [f"{g}::text" for g in spec.group_by]
    where = ["NOT _vf_canary", KEEP.as_string(conn)]
    for g, values in spec.group_by.items():
        declared = ", ".join(f"'{key_text(v)}'" for v in values)
        where.append(f"{g}::text IN ({declared})")
    measure = "0"
    if spec.statistic == "histogram":
        assert spec.bins is not None
        edges = ", ".join(str(float(b)) for b in spec.bins)
        keys.append(f"width_bucket(amount::float8, ARRAY[{edges}])::text")
        where.append(f"amount::float8 >= {spec.bins[0]} AND amount::float8 < {spec.bins[-1]}")
    if spec.column is not None:
        where.append("amount IS NOT NULL")
    if spec.bounds is not None:
        lo, hi = spec.bounds
        measure = f"least(greatest(amount::float8, {lo}), {hi})"
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    query = (
        f"SELECT {', '.join([*keys, 'count(*)', f'sum({measure})'])}"
        f" FROM staging.cells_src WHERE {' AND '.join(where)}{group}"
    )
    n = len(keys)
    return {tuple(r[:n]): (int(r[n]), float(r[n + 1] or 0)) for r in conn.execute(query)}


def check_against_plain(conn: psycopg.Connection) -> None:
    got = exact_cells(conn, TABLE, SPECS, KEEP)
    for spec, cells in zip(SPECS, got, strict=True):
        want = plain_group_by(conn, spec)
        assert want, spec.name  # the data gives every release some rows
        for cell, count, total in zip(cells.cells, cells.counts, cells.sums, strict=True):
            n, s = want.get(cell, (0, 0.0))
            assert (spec.name, cell, int(count)) == (spec.name, cell, n)
            if spec.statistic in ("sum", "mean"):
                assert total == pytest.approx(s, rel=1e-12, abs=1e-9), (spec.name, cell)
        # Every group its own GROUP BY finds is one of the release's declared cells.
        assert set(want) <= set(cells.cells), spec.name


def test_one_shared_scan_gives_each_release_its_own_group_by(source: psycopg.Connection) -> None:
    statements: list[str] = []

    class Counting:
        def execute(self, query: sql.Composable) -> psycopg.Cursor[tuple[object, ...]]:
            statements.append(query.as_string(source))
            return source.execute(query)

    exact_cells(Counting(), TABLE, SPECS, KEEP)  # type: ignore[arg-type]
    assert len(statements) == 1
    check_against_plain(source)


def test_releases_split_over_several_scans_give_the_same_cells(
    source: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(releases, "SHARED_SCAN_CELLS", 1)  # one scan per release
    assert releases._scans(SPECS) == [[i] for i in range(len(SPECS))]
    check_against_plain(source)


def test_the_demo_policys_releases_share_one_scan() -> None:
    policy = parse_policy(DEMO_POLICY.read_text(), file=str(DEMO_POLICY))
    assert len(policy.releases) == 3
    assert releases._scans(policy.releases) == [[0, 1, 2]]
