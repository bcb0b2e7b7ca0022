"""Re-identification risk over time: the linkage attack agrees with a brute-force join,
every run records its figures, `veilflow risk history` prints the trend, and the gate
refuses a run whose risk is above the policy's threshold, naming the earlier figure."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from veilflow.cli import app
from veilflow.errors import ValidationFailed
from veilflow.pipeline.runner import run_policy
from veilflow.policy import parse_policy
from veilflow.privacy.linkage import linkage_attack
from veilflow.zones.db import connect

#: Published rows: (zip, year, gender); NULL is a value an attacker can match on.
PUBLISHED = [
    ("1", "1980", "F"),
    ("1", "1980", "F"),
    ("1", "1980", "M"),
    ("2", "1975", "F"),
    ("2", "1975", None),
    ("3", "1990", "M"),
    ("3", "1990", "M"),
    ("3", "1990", "M"),
    ("4", None, "F"),
]
#: The attacker's auxiliary records, already in published form.
AUXILIARY = [
    ("1", "1980", "F"),  # two published matches: ambiguous
    ("1", "1980", "M"),  # unique
    ("2", "1975", None),  # unique, through NULL
    ("2", "1975", ""),  # '' is not NULL: no match
    ("3", "1990", "M"),  # three: ambiguous
    ("4", None, "F"),  # unique
    ("5", "2000", "F"),  # no match
]


def brute_force(published: list[tuple], auxiliary: list[tuple]) -> dict[str, int]:
    """Every auxiliary record compared with every published one, value by value."""
    out = {"unique": 0, "ambiguous": 0, "unmatched": 0}
    for a in auxiliary:
        n = sum(all(x == y for x, y in zip(a, p, strict=True)) for p in published)
        out["unique" if n == 1 else "ambiguous" if n > 1 else "unmatched"] += 1
    return out


def test_linkage_attack_agrees_with_a_brute_force_join(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE staging.pub (zip text, year text, gender text)")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO staging.pub VALUES (%s, %s, %s)", PUBLISHED)
    aux = pd.DataFrame(AUXILIARY, columns=["zip", "year", "gender"]).astype("string")
    with psycopg.connect(conn.info.dsn, autocommit=False) as c:
        got = linkage_attack(
            c, sql.Identifier("staging", "pub"), aux, ["zip", "year", "gender"], small_below=3
        )
    want = brute_force(PUBLISHED, AUXILIARY)
    assert (got.unique, got.ambiguous, got.unmatched) == (
        want["unique"],
        want["ambiguous"],
        want["unmatched"],
    )
    assert got.auxiliary == len(AUXILIARY) and got.share == pytest.approx(3 / 7)
    # Matched fewer than 3 published rows: the three unique ones and the pair.
    assert got.small == 4


@pytest.fixture
def risky_policy(customers_policy_path: Path) -> str:
    """The test policy: risk watched at k = 10 (its privacy k is 1 on 2,000 rows), under
    thresholds of 100%."""
    text = customers_policy_path.read_text()
    assert "risk:\n  k: 10\n  max_prosecutor_risk: 1.0\n  max_linkage_risk: 1.0\n" in text
    return text


def test_every_run_records_its_risk_and_the_gate_refuses_a_rise_above_the_threshold(
    seeded_db: str, conn: psycopg.Connection, risky_policy: str
) -> None:
    first = run_policy(parse_policy(risky_policy))
    run_policy(parse_policy(risky_policy))
    history = conn.execute(
        "SELECT run_id, rows, prosecutor_risk, source_risk, linkage_risk, passed"
        " FROM governance.risk_history ORDER BY measured_at"
    ).fetchall()
    assert len(history) == 2 and all(h[5] for h in history)
    assert history[0][0] == first.run_id
    _, rows, prosecutor, source, linkage, _ = history[1]
    # On 2,000 rows the demo's classes are small: most records sit below k = 10.
    assert rows == 2_000 and 0.5 < prosecutor <= 1.0 and source == prosecutor
    assert linkage is not None and 0.0 < linkage <= prosecutor
    manifest = conn.execute(
        "SELECT manifest FROM governance.runs WHERE run_id = %s", (history[1][0],)
    ).fetchone()[0]
    assert manifest["risk"]["previous_run"] == first.run_id
    assert manifest["risk"]["linkage"]["columns"] == ["zip", "birth_date", "gender"]

    out = CliRunner().invoke(app, ["risk", "history", "customers"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert "k=10" in lines[0] and len(lines) == 4
    assert lines[3].split()[-2:] == ["passed", history[1][0]]
    js = json.loads(
        CliRunner().invoke(app, ["risk", "history", "customers", "--format", "json"]).output
    )
    assert [p["run_id"] for p in js] == [h[0] for h in history]

    # On purpose: a threshold below what the table carries.
    strict = risky_policy.replace("max_prosecutor_risk: 1.0", "max_prosecutor_risk: 0.05")
    with pytest.raises(ValidationFailed) as info:
        run_policy(parse_policy(strict))
    assert "prosecutor_risk" in str(info.value)
    reason = next(r for r in info.value.reasons if r["check"] == "prosecutor_risk")
    assert reason["threshold"] == 0.05 and reason["observed"] == pytest.approx(prosecutor)
    assert reason["details"]["previous_run"] == history[1][0]
    assert "above the policy's 5.00%" in reason["details"]["reason"]
    last = conn.execute(
        "SELECT passed FROM governance.risk_history ORDER BY measured_at DESC LIMIT 1"
    ).fetchone()
    assert last == (False,)
    out = CliRunner().invoke(app, ["risk", "history", "customers"])
    assert out.output.splitlines()[-1].split()[-2] == "REFUSED"


def test_risk_history_of_an_unknown_dataset_is_one_clear_error(zones_db: str) -> None:
    out = CliRunner().invoke(app, ["risk", "history", "nosuch"])
    assert out.exit_code != 0
    with connect() as c:
        assert c.execute("SELECT count(*) FROM governance.risk_history").fetchone() == (0,)
