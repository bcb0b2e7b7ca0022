"""Differentially private releases: the policy's ``releases:``, computed on the run's raw
snapshot and written to the anonymized zone, paid for from the dataset's budget.

Order of a run's releases, all in one transaction: lock the dataset's budget, refuse (and
audit the refusal) when the run would spend more than remains, compute every release's exact
cells in PostgreSQL, in one scan of the snapshot shared by the releases (only per-group counts
and clipped sums come back), add noise
(:mod:`veilflow.privacy.dp`), write each table beside its old version and swap, record the
spend. A refused run writes no release; a retried publish of a run that already spent
releases nothing twice.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from veilflow.policy.model import Policy
from veilflow.policy.releases import GroupKey, ReleaseSpec
from veilflow.privacy.budget import (
    Budget,
    BudgetExceeded,
    budget_of,
    lock_budget,
    record_spend,
    refusal,
    run_cost,
    spent_by_run,
)
from veilflow.privacy.dp import noise_of, privatize
from veilflow.privacy.erased import not_erased
from veilflow.zones.copy_io import write_frame
from veilflow.zones.publish import swap_in
from veilflow.zones.run_tables import CANARY, RunTables

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReleaseResult:
    """What one release published (no value: names, counts, ε, δ, the noise)."""

    name: str
    table: str
    statistic: str
    column: str | None
    group_by: tuple[str, ...]
    cells: int
    epsilon: float
    delta: float
    mechanism: str
    sensitivity: float
    scale: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "table": self.table,
            "statistic": self.statistic,
            "column": self.column,
            "group_by": list(self.group_by),
            "cells": self.cells,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "mechanism": self.mechanism,
            "sensitivity": self.sensitivity,
            "scale": round(self.scale, 6),
        }


def key_text(value: GroupKey) -> str:
    """A declared group value as PostgreSQL prints the column's value (``::text``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_budget(conn: psycopg.Connection, policy: Policy, run_id: str) -> Budget | None:
    """Refuse (audited) a run whose releases the remaining budget cannot pay; the early check
    extract makes, before any work. Returns the budget (None without releases)."""
    if not policy.releases:
        return None
    if spent_by_run(conn, run_id):
        return budget_of(conn, policy.dataset)
    budget = budget_of(conn, policy.dataset)
    epsilon, delta = run_cost(policy.releases)
    why = refusal(policy.dataset, budget, epsilon, delta)
    if why is not None:
        _refuse(conn, policy, run_id, why, epsilon, delta, budget)
    return budget


def _refuse(
    conn: psycopg.Connection,
    policy: Policy,
    run_id: str,
    why: str,
    epsilon: float,
    delta: float,
    budget: Budget | None,
) -> None:
    from veilflow.vault.audit import record

    if not conn.autocommit:
        conn.rollback()
    try:
        record(
            conn,
            "dp_release",
            target=policy.dataset,
            outcome="denied",
            details={
                "run_id": run_id,
                "reason": why,
                "releases": [r.name for r in policy.releases],
                "epsilon": epsilon,
                "delta": delta,
                "budget": None if budget is None else budget.to_dict(),
            },
        )
    except psycopg.Error as exc:  # the refusal stands even if its trace cannot be written
        log.error("could not audit the refused releases of run %s: %s", run_id, exc)
    raise BudgetExceeded(f"run {run_id}: releases refused, nothing released: {why}")


def _cells(spec: ReleaseSpec) -> list[tuple[str, ...]]:
    """Every cell of the release, in order: declared group values (x bins)."""
    axes: list[list[str]] = [[key_text(v) for v in keys] for keys in spec.group_by.values()]
    if spec.statistic == "histogram":
        assert spec.bins is not None
        axes.append([str(i) for i in range(1, len(spec.bins))])
    return [tuple(c) for c in itertools.product(*axes)] if axes else [()]


#: A shared scan's groups are the combinations of its keys' values: releases share a scan
#: while the product of their keys' declared values (each plus one: the values no release
#: of the scan declares) stays within this, and start another scan beyond it. Undeclared
#: values add groups of their own, one per distinct value in the rows the scan takes.
SHARED_SCAN_CELLS = 1 << 16


@dataclass(frozen=True)
class ExactCells:
    """One release's exact cells, before noise: never leaves the publishing process."""

    cells: list[tuple[str, ...]]
    counts: np.ndarray
    sums: np.ndarray


@dataclass(frozen=True)
class _Shape:
    """A release's part of a shared scan: its key expressions (with a name that tells the
    same key of two releases apart from different ones), its rows and its measure."""

    keys: list[tuple[tuple[object, ...], sql.Composable]]
    where: sql.Composable
    measure: sql.Composable | None


def _shape(spec: ReleaseSpec) -> _Shape:
    """The cells' keys, the rows that fall in a cell, and the clipped measure (a sum or
    mean's), as ``exact_cells`` reads them."""
    keys: list[tuple[tuple[object, ...], sql.Composable]] = [
        (("column", g), sql.SQL("{}::text").format(sql.Identifier(g))) for g in spec.group_by
    ]
    where: list[sql.Composable] = []
    for g, values in spec.group_by.items():
        where.append(
            sql.SQL("{}::text = ANY({})").format(
                sql.Identifier(g), sql.Literal([key_text(v) for v in values])
            )
        )
    measure: sql.Composable | None = None
    if spec.column is not None:
        col = sql.SQL("{}::float8").format(sql.Identifier(spec.column))
        where.append(sql.SQL("{} IS NOT NULL").format(sql.Identifier(spec.column)))
        if spec.statistic == "histogram":
            assert spec.bins is not None
            edges = [float(b) for b in spec.bins]
            keys.append(
                (
                    ("bins", spec.column, tuple(edges)),
                    sql.SQL("width_bucket({}, {}::float8[])::text").format(col, sql.Literal(edges)),
                )
            )
            where.append(
                sql.SQL("{c} >= {lo} AND {c} < {hi}").format(
                    c=col, lo=sql.Literal(spec.bins[0]), hi=sql.Literal(spec.bins[-1])
                )
            )
        elif spec.bounds is not None:
            measure = sql.SQL("least(greatest({}, {}), {})").format(
                col, sql.Literal(spec.bounds[0]), sql.Literal(spec.bounds[1])
            )
    rows = sql.SQL(" AND ").join(where) if where else sql.SQL("true")
    return _Shape(keys, rows, measure)


def _key_values(spec: ReleaseSpec) -> dict[tuple[object, ...], set[str]]:
    """The declared values of each of the release's keys."""
    out: dict[tuple[object, ...], set[str]] = {
        ("column", g): {key_text(v) for v in values} for g, values in spec.group_by.items()
    }
    if spec.statistic == "histogram":
        assert spec.bins is not None and spec.column is not None
        out[("bins", spec.column, tuple(float(b) for b in spec.bins))] = {
            str(i) for i in range(1, len(spec.bins))
        }
    return out


def _scans(specs: Sequence[ReleaseSpec]) -> list[list[int]]:
    """The releases (by index) that share each scan: in order, while the product of the
    keys' declared values (each plus one) stays within ``SHARED_SCAN_CELLS``."""
    scans: list[list[int]] = []
    values: dict[tuple[object, ...], set[str]] = {}
    for i, spec in enumerate(specs):
        merged = {k: set(v) for k, v in values.items()}
        for k, v in _key_values(spec).items():
            merged.setdefault(k, set()).update(v)
        if scans and math.prod(len(v) + 1 for v in merged.values()) <= SHARED_SCAN_CELLS:
            scans[-1].append(i)
            values = merged
        else:
            scans.append([i])
            values = {k: set(v) for k, v in _key_values(spec).items()}
    return scans


def exact_cells(
    conn: psycopg.Connection,
    snapshot: sql.Composable,
    specs: Sequence[ReleaseSpec],
    rows: sql.Composable = sql.SQL("true"),
) -> list[ExactCells]:
    """Per release, per cell: the exact count and clipped sum, computed in PostgreSQL on the
    real rows (canaries left out, and rows failing ``rows``: erased subjects'). Rows outside
    a release's declared groups or bins fall in none of its cells.

    The releases share scans of the snapshot (one for the demo's three): one ``GROUP BY``
    of every key the releases of a scan group by, each release's count and sum taken over
    its own rows (``FILTER``), so every release's cell adds up exactly the rows its own
    ``GROUP BY`` would; the cells are then added up here from the groups."""
    out: dict[int, ExactCells] = {}
    for scan in _scans(specs):
        out.update(_scan(conn, snapshot, [(i, specs[i]) for i in scan], rows))
    return [out[i] for i in range(len(specs))]


def _scan(
    conn: psycopg.Connection,
    snapshot: sql.Composable,
    specs: list[tuple[int, ReleaseSpec]],
    rows: sql.Composable,
) -> dict[int, ExactCells]:
    shapes = [(i, spec, _shape(spec)) for i, spec in specs]
    keys: dict[tuple[object, ...], sql.Composable] = {}
    for _, _, shape in shapes:
        for name, expr in shape.keys:
            keys.setdefault(name, expr)
    names = list(keys)
    aggregates: list[sql.Composable] = []
    for _, _, shape in shapes:
        aggregates.append(sql.SQL("count(*) FILTER (WHERE {})").format(shape.where))
        if shape.measure is not None:
            aggregates.append(
                sql.SQL("coalesce(sum({}) FILTER (WHERE {}), 0)").format(shape.measure, shape.where)
            )
    # A row no release takes is left out before it is grouped.
    query = sql.SQL(
        "SELECT {sel} FROM {snap} WHERE NOT {canary} AND {rows} AND ({any}){group}"
    ).format(
        sel=sql.SQL(", ").join([*(keys[n] for n in names), *aggregates]),
        snap=snapshot,
        canary=sql.Identifier(CANARY),
        rows=rows,
        # A histogram's rows are tried last: its bin range casts the column to float8 twice
        # a row, which a row another release takes is spared (the demo's scan: ~15% less).
        any=sql.SQL(" OR ").join(
            sql.SQL("({})").format(s.where)
            for _, _, s in sorted(shapes, key=lambda t: t[1].statistic == "histogram")
        ),
        group=sql.SQL(" GROUP BY {}").format(
            sql.SQL(", ").join(sql.SQL(str(i + 1)) for i in range(len(names)))
        )
        if names
        else sql.SQL(""),
    )
    # Where each release's key values, count and sum are in a row of the result.
    columns: list[tuple[list[int], int, int | None]] = []
    col = len(names)
    for _, _, shape in shapes:
        has_sum = shape.measure is not None
        columns.append(([names.index(n) for n, _ in shape.keys], col, col + 1 if has_sum else None))
        col += 2 if has_sum else 1
    found: list[dict[tuple[str, ...], tuple[int, float]]] = [{} for _ in shapes]
    for r in conn.execute(query):
        for got, (at, count_at, sum_at) in zip(found, columns, strict=True):
            count = int(r[count_at])
            if count:  # a group with rows of this release: its keys are one of its cells
                cell = tuple(r[k] for k in at)
                n, total = got.get(cell, (0, 0.0))
                got[cell] = (n + count, total + (0.0 if sum_at is None else float(r[sum_at])))
    out: dict[int, ExactCells] = {}
    for (i, spec, _), got in zip(shapes, found, strict=True):
        cells = _cells(spec)
        counts = np.array([got.get(c, (0, 0.0))[0] for c in cells], dtype=np.int64)
        sums = np.array([got.get(c, (0, 0.0))[1] for c in cells], dtype=np.float64)
        out[i] = ExactCells(cells, counts, sums)
    return out


def release_frame(
    spec: ReleaseSpec, cells: list[tuple[str, ...]], values: np.ndarray
) -> pd.DataFrame:
    """The table a release publishes: its group columns (text), a histogram's bin edges, and
    the noisy value, named after the statistic."""
    groups = list(spec.group_by)
    frame = pd.DataFrame({g: [c[i] for c in cells] for i, g in enumerate(groups)})
    if spec.statistic == "histogram":
        assert spec.bins is not None
        bins = [int(c[len(groups)]) for c in cells]
        frame["bin_lower"] = [spec.bins[b - 1] for b in bins]
        frame["bin_upper"] = [spec.bins[b] for b in bins]
    frame["count" if spec.statistic == "histogram" else spec.statistic] = values
    return frame


def _column_types(spec: ReleaseSpec) -> list[tuple[str, str]]:
    out = [(g, "text") for g in spec.group_by]
    if spec.statistic == "histogram":
        out += [("bin_lower", "double precision"), ("bin_upper", "double precision")]
    value = "bigint" if spec.statistic in ("count", "histogram") else "double precision"
    out.append(("count" if spec.statistic == "histogram" else spec.statistic, value))
    return out


def write_release(
    conn: psycopg.Connection,
    table: str,
    spec: ReleaseSpec,
    frame: pd.DataFrame,
    readers: list[str],
    tag: str,
) -> None:
    """Build the release beside its old version and swap names, in the caller's transaction."""
    schema, name = table.split(".")
    new = f"{name}__new_{tag}"[:63]
    old = f"{name}__old_{tag}"[:63]
    defs = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in _column_types(spec)
    )
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, new)))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(schema, new), defs))
    write_frame(conn, sql.Identifier(schema, new), frame)
    swap_in(conn, schema, name, new, old, readers)


def publish_releases(
    conn: psycopg.Connection,
    policy: Policy,
    run_id: str,
    snapshot: sql.Composable,
    readers: list[str],
    tag: str,
) -> dict[str, Any] | None:
    """Spend the run's budget and write its releases, or refuse (audited) and write none.
    Returns the manifest's ``releases`` entry (None without releases)."""
    if not policy.releases:
        return None
    t0 = time.perf_counter()
    done = spent_by_run(conn, run_id)
    if done:  # an earlier attempt of this publish released them: spend nothing twice
        budget = budget_of(conn, policy.dataset)
        return {
            "releases": [{"name": n, "table": t, "epsilon": e, "delta": d} for n, t, e, d in done],
            "budget": None if budget is None else budget.to_dict(),
            "epsilon_spent": sum(e for _, _, e, _ in done),
            "delta_spent": sum(d for _, _, _, d in done),
        }
    epsilon, delta = run_cost(policy.releases)
    results: list[ReleaseResult] = []
    with conn.transaction():
        lock_budget(conn, policy.dataset)
        before = budget_of(conn, policy.dataset)
        why = refusal(policy.dataset, before, epsilon, delta)
        if why is None:
            keep = not_erased(conn, policy, RunTables(policy.dataset, run_id))
            exact = exact_cells(conn, snapshot, policy.releases, keep)
            for spec, cells in zip(policy.releases, exact, strict=True):
                values = privatize(spec, cells.counts, cells.sums)
                table = spec.table_for(policy.dataset)
                frame = release_frame(spec, cells.cells, values)
                write_release(conn, table, spec, frame, readers, tag)
                record_spend(conn, run_id, policy.dataset, spec)
                noise = noise_of(spec)
                results.append(
                    ReleaseResult(
                        spec.name,
                        table,
                        spec.statistic,
                        spec.column,
                        tuple(spec.group_by),
                        len(cells.cells),
                        spec.epsilon,
                        spec.delta,
                        noise.mechanism,
                        noise.sensitivity,
                        noise.scale,
                    )
                )
    if why is not None:
        _refuse(conn, policy, run_id, why, epsilon, delta, before)
    after = budget_of(conn, policy.dataset)
    log.info(
        "released %d DP table(s) of %s (ε %.3g, δ %.3g) in %.2fs",
        len(results),
        policy.dataset,
        epsilon,
        delta,
        time.perf_counter() - t0,
    )
    return {
        "releases": [r.to_dict() for r in results],
        "budget": None if after is None else after.to_dict(),
        "epsilon_spent": epsilon,
        "delta_spent": delta,
        "seconds": round(time.perf_counter() - t0, 3),
    }
