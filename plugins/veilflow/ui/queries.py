"""Read-only queries behind the pages that the owning packages do not offer as such: lineage
runs with the explorer's filters, runs and their manifests, key inventory without material,
audit entries with filters, and which group roles can read each zone.

Column lineage itself comes from ``veilflow.lineage.view``; grants from
``veilflow.zones.access``; audit verification from ``veilflow.vault.audit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from veilflow.vault.keys import list_keys
from veilflow.zones.access import ROLES, ZONES
from veilflow.zones.manifest import QuarantineEntry, RunManifest
from veilflow.zones.publish import published_rows, quarantined
from veilflow.zones.runs import RunRow, get_run, list_runs, statuses


@dataclass(frozen=True)
class LineageFilter:
    """The explorer's filters: policy (name, file or hash prefix), dataset, date range."""

    policy: str | None = None
    dataset: str | None = None
    since: date | None = None
    until: date | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        conds: list[str] = ["true"]
        params: dict[str, Any] = {}
        if self.dataset:
            conds.append("dataset = %(dataset)s")
            params["dataset"] = self.dataset
        if self.policy:
            conds.append(
                "(policy_hash LIKE %(policy_prefix)s"
                " OR event #>> '{run,facets,veilflow_anonymization,policy,name}' = %(policy)s"
                " OR event #>> '{run,facets,veilflow_anonymization,policy,file}' = %(policy)s)"
            )
            params["policy"] = self.policy
            params["policy_prefix"] = self.policy.replace("%", "").replace("_", r"\_") + "%"
        if self.since:
            conds.append("event_time >= %(since)s")
            params["since"] = self.since
        if self.until:  # the whole day named
            conds.append("event_time < %(until)s")
            params["until"] = self.until + timedelta(days=1)
        return " AND ".join(conds), params

    def query(self) -> dict[str, str]:
        """The filters as URL query parameters (for links that keep them)."""
        out = {
            "policy": self.policy,
            "since": self.since and self.since.isoformat(),
            "until": self.until and self.until.isoformat(),
        }
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class DatasetSummary:
    dataset: str
    runs: int
    events: int
    last_event: datetime
    policy_hash: str | None
    outputs: list[str]


def lineage_datasets(conn: psycopg.Connection, flt: LineageFilter) -> list[DatasetSummary]:
    """Datasets with stored lineage (matching the filters), most recently active first."""
    where, params = flt.where()
    rows = conn.execute(
        "SELECT dataset, count(DISTINCT run_id), count(*), max(event_time),"
        " (array_agg(policy_hash ORDER BY event_time DESC, event_id DESC))[1],"
        " array_agg(DISTINCT outputs[1])"
        f" FROM governance.lineage_events WHERE {where}"
        " GROUP BY dataset ORDER BY max(event_time) DESC",
        params,
    ).fetchall()
    # staging tables are a run's scratch space; users look for what was published
    return [
        DatasetSummary(
            r[0],
            int(r[1]),
            int(r[2]),
            r[3],
            r[4],
            [o for o in r[5] if o and not o.startswith("staging.")],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class LineageRun:
    run_id: str
    first_event: datetime
    last_event: datetime
    last_stage: str
    last_type: str
    events: int
    policy_hash: str | None
    status: str | None


def lineage_runs(
    conn: psycopg.Connection, flt: LineageFilter, *, limit: int = 100, offset: int = 0
) -> tuple[int, list[LineageRun]]:
    """(runs matching, one page of them newest first) for the explorer's run list."""
    where, params = flt.where()
    total = conn.execute(
        f"SELECT count(DISTINCT run_id) FROM governance.lineage_events WHERE {where}", params
    ).fetchone()
    rows = conn.execute(
        "WITH ev AS (SELECT run_id, min(event_time) AS first_t, max(event_time) AS last_t,"
        "   (array_agg(stage ORDER BY event_time DESC, event_id DESC))[1] AS stage,"
        "   (array_agg(event_type ORDER BY event_time DESC, event_id DESC))[1] AS etype,"
        "   count(*) AS n,"
        "   (array_agg(policy_hash ORDER BY event_time DESC, event_id DESC))[1] AS phash"
        f"  FROM governance.lineage_events WHERE {where} GROUP BY run_id"
        "  ORDER BY max(event_time) DESC LIMIT %(limit)s OFFSET %(offset)s)"
        " SELECT run_id, first_t, last_t, stage, etype, n, phash FROM ev ORDER BY last_t DESC",
        {**params, "limit": limit, "offset": offset},
    ).fetchall()
    status = statuses(conn, [r[0] for r in rows])
    return (
        int(total[0]) if total else 0,
        [LineageRun(r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6], status.get(r[0])) for r in rows],
    )


# ------------------------------------------------------------------------------- runs
def runs(
    conn: psycopg.Connection,
    *,
    dataset: str | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[RunRow]:
    return list_runs(conn, dataset=dataset, status=status, limit=limit)


@dataclass(frozen=True)
class RunDetail:
    run: RunRow
    manifest: RunManifest
    quarantine: QuarantineEntry | None
    published_rows: int | None


def run_detail(conn: psycopg.Connection, run_id: str) -> RunDetail | None:
    found = get_run(conn, run_id)
    if found is None:
        return None
    run, manifest = found
    q = quarantined(conn, run_id)
    quarantine = QuarantineEntry(table=q[0], reasons=tuple(q[1])) if q else manifest.quarantine
    return RunDetail(run, manifest, quarantine, published_rows(conn, run_id))


# ------------------------------------------------------------------------------- keys
@dataclass(frozen=True)
class KeyRow:
    """One key version for display: names, state and dates, never material."""

    key_id: str
    dataset: str
    purpose: str
    version: int
    state: str
    master_key_id: str
    created_at: datetime
    created_by: str
    changed_at: datetime


def key_inventory(conn: psycopg.Connection, dataset: str | None = None) -> list[KeyRow]:
    return [
        KeyRow(
            v.key_id,
            v.dataset,
            v.purpose,
            v.version,
            v.state,
            v.master_key_id,
            v.created_at,
            v.created_by,
            v.changed_at,
        )
        for v in list_keys(conn, dataset)
    ]


# ------------------------------------------------------------------------------- access
def role_zones(conn: psycopg.Connection) -> dict[str, dict[str, str]]:
    """Group role short name -> zone -> "read" / "read/write" / "" (from the catalog)."""
    rows = conn.execute(
        "SELECT g.rolname::text, z.zone,"
        "  has_schema_privilege(g.oid, z.zone, 'USAGE'),"
        "  has_schema_privilege(g.oid, z.zone, 'CREATE')"
        " FROM pg_roles g CROSS JOIN unnest(%(zones)s::text[]) AS z(zone)"
        " WHERE g.rolname = ANY(%(groups)s)"
        "   AND EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = z.zone)",
        {"zones": list(ZONES), "groups": list(ROLES.values())},
    ).fetchall()
    by_group = {v: k for k, v in ROLES.items()}
    out: dict[str, dict[str, str]] = {name: {z: "" for z in ZONES} for name in ROLES}
    for group, zone, usage, create in rows:
        out[by_group[group]][zone] = (
            "read/write" if usage and create else "read" if usage else "write" if create else ""
        )
    return out
