"""The gate: runs every check the policy implies on the staged candidate."""

from __future__ import annotations

import logging

import psycopg

from veilflow.validate.checks import no_raw_value_survives, row_count_parity
from veilflow.validate.context import GateContext
from veilflow.validate.report import GateReport

log = logging.getLogger(__name__)


def run_gate(conn: psycopg.Connection, ctx: GateContext) -> GateReport:
    """Check the candidate; the caller publishes on pass and quarantines on fail."""
    report = GateReport()
    report.checks.append(row_count_parity(conn, ctx, suppressed=report.suppressed_rows))
    report.checks.extend(no_raw_value_survives(conn, ctx))
    for c in report.failures:
        log.warning("gate check %s failed%s: observed %s, threshold %s", c.name,
                    f" on {c.column}" if c.column else "", c.observed, c.threshold)
    return report
