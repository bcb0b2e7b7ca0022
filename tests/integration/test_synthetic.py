"""Synthetic tables: fitted on the candidate the gate passed, published beside the masked
table when no row copies a record and few lie close to one; a synthesizer that copies
records gets the run quarantined, the synthetic table with it."""

from __future__ import annotations

import pandas as pd
import psycopg
import pytest

from tests.conftest import DEMO_POLICY, small_data_policy
from veilflow.errors import ValidationFailed
from veilflow.pipeline.runner import run_policy
from veilflow.policy import parse_policy
from veilflow.privacy.synthesis import GaussianCopula

pytestmark = pytest.mark.slow

COLUMNS = ["birth_date", "zip", "gender", "amount", "diagnosis"]
SYNTHETIC = f"""
synthetic:
  columns: [{", ".join(COLUMNS)}]
  seed: 5
"""


@pytest.fixture
def policy_text() -> str:
    return small_data_policy(DEMO_POLICY.read_text()) + SYNTHETIC


def copies(conn: psycopg.Connection, table: str) -> int:
    cols = ", ".join(COLUMNS)
    return conn.execute(
        f"SELECT count(*) FROM {table} s WHERE ROW({cols})::text IN"
        f" (SELECT ROW({cols})::text FROM anonymized.customers)"
    ).fetchone()[0]


def test_a_synthetic_table_passes_its_gate_and_is_published(
    seeded_db: str, conn: psycopg.Connection, policy_text: str
) -> None:
    summary = run_policy(parse_policy(policy_text))
    m = conn.execute(
        "SELECT manifest FROM governance.runs WHERE run_id = %s", (summary.run_id,)
    ).fetchone()[0]
    s = m["synthetic"]
    assert s["rows"] == 2000 and s["trained_on"] == 2000 and s["exact_copies"] == 0
    assert conn.execute("SELECT count(*) FROM anonymized.customers_synthetic").fetchone() == (2000,)
    assert copies(conn, "anonymized.customers_synthetic") == 0
    # The same columns and types as the masked table; ML engineers read it.
    types = conn.execute(
        "SELECT table_name, array_agg(data_type ORDER BY ordinal_position)"
        " FROM information_schema.columns WHERE table_schema = 'anonymized'"
        " AND column_name = ANY(%s) GROUP BY 1 ORDER BY 1",
        (COLUMNS,),
    ).fetchall()
    assert types[0][1] == types[1][1]
    conn.execute("SET ROLE veilflow_ml_engineer")
    assert conn.execute("SELECT count(*) FROM anonymized.customers_synthetic").fetchone() == (2000,)
    conn.execute("RESET ROLE")
    checks = {c["name"]: c for c in m["gate"]["checks"]}
    assert checks["synthetic_exact_copies"]["passed"] and checks["synthetic_distance"]["passed"]
    fid = s["fidelity"]
    assert set(fid["columns"]) == set(COLUMNS) and fid["quality"] > 0.85
    assert conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'"
    ).fetchone() == (0,)


def test_a_synthetic_row_identical_to_a_record_is_quarantined(
    seeded_db: str,
    conn: psycopg.Connection,
    policy_text: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On purpose: a synthesizer that hands back one of the records it was fitted on, and
    no filter in front of the gate."""
    real_fit = GaussianCopula.fit
    memorized: list[pd.DataFrame] = []

    def fit(frame: pd.DataFrame, numeric: set[str] | None = None) -> GaussianCopula:
        memorized.append(frame.copy())
        return real_fit(frame, numeric)

    real_sample = GaussianCopula.sample

    def sample(self: GaussianCopula, rows: int, seed: int) -> pd.DataFrame:
        out = real_sample(self, rows, seed)
        record, at = memorized[-1].iloc[123], out.index[7]
        for c in out.columns:
            value = record[c]
            if value is None or pd.isna(value):
                out.loc[at, c] = None
            elif pd.api.types.is_numeric_dtype(out[c]):
                out.loc[at, c] = pd.to_numeric(value)
            else:
                out.loc[at, c] = value
        return out

    monkeypatch.setattr(GaussianCopula, "fit", classmethod(lambda cls, f, n=None: fit(f, n)))
    monkeypatch.setattr(GaussianCopula, "sample", sample)
    text = policy_text.replace("  seed: 5\n", "  seed: 5\n  drop_copies: false\n")
    with pytest.raises(ValidationFailed) as info:
        run_policy(parse_policy(text))
    reason = next(r for r in info.value.reasons if r["check"] == "synthetic_exact_copies")
    assert reason["observed"] >= 1 and reason["threshold"] == 0
    assert "synthetic_exact_copies" in str(info.value)
    quarantined = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'quarantine' ORDER BY 1"
    ).fetchall()
    names = [q[0] for q in quarantined]
    assert any(n.startswith("customers_synthetic__") for n in names)
    # The risk history holds the gate's final verdict, the synthetic table's checks included.
    assert conn.execute("SELECT passed FROM governance.risk_history").fetchall() == [(False,)]
    assert conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'anonymized'"
    ).fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'"
    ).fetchone() == (0,)
