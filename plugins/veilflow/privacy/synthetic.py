"""The policy's ``synthetic:`` table: fitted on the candidate once the gate has passed it,
checked by its own gate, published beside the masked table (or quarantined with it).

The gate on a synthetic table, in the validate stage:

- **no exact copy**: no synthetic row equals, column for column, a row it was fitted on
  (compared in PostgreSQL, each value as its column's type prints it: whole-row text);
- **distance to closest record**: at most ``max_close_share`` of a sample of synthetic rows
  lie closer than ``min_distance`` (Gower) to a record of the candidate;
- a **fidelity report** (recorded, not gated): per-column marginal distance, the largest
  difference between pairwise correlations, a quality score.

The synthesizer draws a few more rows than asked and drops any exact copy before the gate
(``drop_copies``, on by default); the gate still checks, so a synthesizer that copies is caught.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from veilflow.policy.model import Policy
from veilflow.privacy.erased import not_erased
from veilflow.privacy.synthesis import GaussianCopula, distance_to_closest, fidelity
from veilflow.validate.context import GateContext
from veilflow.validate.report import CheckResult, GateReport
from veilflow.zones.copy_io import read_frame, write_frame
from veilflow.zones.run_tables import CANARY, RunTables, table_exists

log = logging.getLogger(__name__)

_ORDINAL = "_vf_syn"
_NUMERIC = ("smallint", "integer", "bigint", "numeric", "real", "double precision")
#: Extra rows drawn so that dropping exact copies still leaves as many as asked.
_SPARE = 0.01


def _types(conn: psycopg.Connection, table: sql.Identifier, columns: list[str]) -> dict[str, str]:
    schema, name = table.as_string(conn).replace('"', "").split(".")
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s",
        (schema, name),
    ).fetchall()
    found = {str(r[0]): str(r[1]) for r in rows}
    return {c: found[c] for c in columns}


def _copies(
    conn: psycopg.Connection, syn: sql.Identifier, cand: sql.Identifier, cols: list[str]
) -> sql.Composed:
    def row(alias: str) -> sql.Composable:
        return sql.SQL("ROW({})::text").format(
            sql.SQL(", ").join(sql.Identifier(alias, c) for c in cols)
        )

    return sql.SQL(
        "{s}.{o} IN (SELECT s.{o} FROM {syn} s JOIN (SELECT DISTINCT {rc} AS r FROM {cand} c"
        " WHERE c.{canary} IS NOT TRUE) c ON c.r = {rs})"
    ).format(
        s=sql.Identifier("syn"),
        o=sql.Identifier(_ORDINAL),
        syn=syn,
        rc=row("c"),
        cand=cand,
        canary=sql.Identifier(CANARY),
        rs=row("s"),
    )


def synthesize(
    conn: psycopg.Connection,
    ctx: GateContext,
    report: GateReport,
) -> dict[str, Any]:
    """Fit, sample, write the synthetic table to staging, add its gate checks to ``report``;
    returns the manifest's ``synthetic`` entry. Call only once the candidate has passed."""
    settings = ctx.policy.synthetic
    assert settings is not None
    t0 = time.perf_counter()
    rt = ctx.tables
    cols = list(settings.columns)
    types = _types(conn, rt.candidate, cols)
    train = read_frame(
        conn,
        sql.SQL("SELECT {c} FROM {t} WHERE {canary} IS NOT TRUE AND {keep}").format(
            c=sql.SQL(", ").join(sql.Identifier(c) for c in cols),
            t=rt.candidate,
            canary=sql.Identifier(CANARY),
            keep=not_erased(conn, ctx.policy, rt),
        ),
        cols,
    )
    numeric = {c for c, t in types.items() if t in _NUMERIC}
    model = GaussianCopula.fit(train, numeric)
    rows = settings.rows or len(train)
    sample = model.sample(rows + int(rows * _SPARE) + 10, settings.seed)
    sample[_ORDINAL] = np.arange(1, len(sample) + 1)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(rt.synthetic))
    conn.execute(
        sql.SQL("CREATE UNLOGGED TABLE {syn} AS SELECT {c} FROM {cand} LIMIT 0").format(
            syn=rt.synthetic,
            c=sql.SQL(", ").join(sql.Identifier(c) for c in cols),
            cand=rt.candidate,
        )
    )
    conn.execute(
        sql.SQL("ALTER TABLE {} ADD COLUMN {} bigint").format(
            rt.synthetic, sql.Identifier(_ORDINAL)
        )
    )
    write_frame(conn, rt.synthetic, sample)
    dropped = 0
    if settings.drop_copies:
        dropped = conn.execute(
            sql.SQL("DELETE FROM {syn} syn WHERE {copies}").format(
                syn=rt.synthetic, copies=_copies(conn, rt.synthetic, rt.candidate, cols)
            )
        ).rowcount
    conn.execute(
        sql.SQL(
            "DELETE FROM {syn} WHERE {o} > (SELECT {o} FROM {syn} ORDER BY {o}"
            " OFFSET {n} - 1 LIMIT 1)"
        ).format(syn=rt.synthetic, o=sql.Identifier(_ORDINAL), n=sql.Literal(rows))
    )
    # The gate: exact copies, counted as the tables' types print them.
    copies = _one(
        conn.execute(
            sql.SQL("SELECT count(*) FROM {syn} syn WHERE {copies}").format(
                syn=rt.synthetic, copies=_copies(conn, rt.synthetic, rt.candidate, cols)
            )
        ).fetchone()
    )
    written = _one(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(rt.synthetic)).fetchone())
    synthetic = read_frame(
        conn,
        sql.SQL("SELECT {c} FROM {syn} ORDER BY {o}").format(
            c=sql.SQL(", ").join(sql.Identifier(c) for c in cols),
            syn=rt.synthetic,
            o=sql.Identifier(_ORDINAL),
        ),
        cols,
    )
    rng = np.random.default_rng(settings.seed)
    n_syn = min(settings.distance_sample, len(synthetic))
    n_src = min(settings.distance_sample * 20, len(train))
    syn_idx = np.sort(rng.choice(len(synthetic), n_syn, replace=False))
    src_idx = np.sort(rng.choice(len(train), n_src, replace=False))
    dcr = distance_to_closest(
        _typed(synthetic.iloc[syn_idx], numeric), _typed(train.iloc[src_idx], numeric)
    )
    close = int((dcr < settings.min_distance).sum())
    close_share = close / len(dcr) if len(dcr) else 0.0
    report.checks.append(
        CheckResult(
            "synthetic_exact_copies",
            copies == 0,
            observed=copies,
            threshold=0,
            details={"table": settings.table_for(ctx.policy.dataset), "rows": written},
        )
    )
    report.checks.append(
        CheckResult(
            "synthetic_distance",
            close_share <= settings.max_close_share,
            observed=round(close_share, 6),
            threshold=settings.max_close_share,
            details={
                "min_distance": settings.min_distance,
                "sampled": len(dcr),
                "against": int(n_src),
                "too_close": close,
                "distance_p05": round(float(np.quantile(dcr, 0.05)), 6) if len(dcr) else None,
            },
        )
    )
    # Fidelity on samples: the marginals and correlations of 20,000 rows are as good a
    # picture as those of a million, for a fraction of the time.
    fid_syn = np.sort(rng.choice(len(synthetic), min(20_000, len(synthetic)), replace=False))
    fid_src = np.sort(rng.choice(len(train), min(20_000, len(train)), replace=False))
    fid = fidelity(_typed(synthetic.iloc[fid_syn], numeric), _typed(train.iloc[fid_src], numeric))
    if not (copies == 0 and close_share <= settings.max_close_share):
        out_table = quarantine_synthetic(conn, rt)
    else:
        out_table = None
    out = {
        "table": settings.table_for(ctx.policy.dataset),
        "synthesizer": "gaussian_copula",
        "columns": cols,
        "rows": written,
        "trained_on": len(train),
        "exact_copies": copies,
        "copies_dropped_before_the_gate": dropped,
        "distance": {
            "min_distance": settings.min_distance,
            "too_close_share": round(close_share, 6),
            "max_close_share": settings.max_close_share,
            "p05": round(float(np.quantile(dcr, 0.05)), 6) if len(dcr) else None,
        },
        "fidelity": fid,
        "quarantined_as": out_table,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    log.info(
        "synthetic %s: %d rows, %d exact copies, %.4f too close, quality %.3f",
        out["table"],
        written,
        copies,
        close_share,
        fid["quality"],
    )
    return out


def _one(row: tuple[Any, ...] | None) -> int:
    assert row is not None
    return int(row[0])


def _typed(frame: pd.DataFrame, numeric: set[str]) -> pd.DataFrame:
    """Numeric columns as numbers (COPY hands text back), the others as they are."""
    out = frame.reset_index(drop=True).copy()
    for c in numeric & set(out.columns):
        out[c] = pd.to_numeric(out[c], errors="coerce")
    return out


def quarantine_synthetic(conn: psycopg.Connection, rt: RunTables) -> str | None:
    """Move a refused synthetic table to the quarantine zone; returns its name."""
    if not table_exists(conn, "staging", rt.synthetic_name):
        return None
    name = f"{rt.dataset}_synthetic__{rt.tag}"[:63]
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("quarantine", name)))
    conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA quarantine").format(rt.synthetic))
    conn.execute(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            sql.Identifier("quarantine", rt.synthetic_name), sql.Identifier(name)
        )
    )
    conn.execute(
        sql.SQL("GRANT SELECT ON {} TO veilflow_steward").format(sql.Identifier("quarantine", name))
    )
    return f"quarantine.{name}"


def publish_synthetic(
    conn: psycopg.Connection, policy: Policy, rt: RunTables, readers: list[str]
) -> str | None:
    """Swap the gated synthetic table into the anonymized zone with the readers' grants."""
    settings = policy.synthetic
    if settings is None or not table_exists(conn, "staging", rt.synthetic_name):
        return None
    schema, name = settings.table_for(policy.dataset).split(".")
    with conn.transaction():
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(rt.synthetic, sql.Identifier(_ORDINAL))
        )
        conn.execute(sql.SQL("ALTER TABLE {} SET LOGGED").format(rt.synthetic))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, name)))
        conn.execute(
            sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(rt.synthetic, sql.Identifier(schema))
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(schema, rt.synthetic_name), sql.Identifier(name)
            )
        )
        for role in readers:
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO {}").format(
                    sql.Identifier(schema, name), sql.Identifier(role)
                )
            )
    return f"{schema}.{name}"
