"""Great Expectations suites generated from the policy, run in PostgreSQL on the candidate.

:func:`build_expectations` (``veilflow.validate.expectations``) derives plain specs from the
gate context; :func:`run_expectations` turns them into a GX 1.x suite and validates it through GX's SQL
datasource, so every expectation runs as SQL where the data is; GX itself is imported only
then (it takes seconds to import). One table asset, one batch, one suite: the expectations
on real rows carry a row condition (canaries left out), so GX answers all of them but key
uniqueness and the row count with one aggregate scan, and nothing row-sized reaches Python.

Results never carry values: every expectation runs with ``partial_unexpected_count: 0``
and without unexpected rows (GX would otherwise return up to 20 raw failing values), so the
results and the Data Docs hold counts only. Data Docs (HTML) are written per run.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import psycopg

from veilflow.validate.context import GateContext
from veilflow.validate.expectations import (
    DETERMINISTIC,
    PER_ROW,
    ExpectationSpec,
    build_expectations,
    gx_type_names,
    output_pattern,
    spec_key,
    token_format_parts,
    token_like,
)
from veilflow.validate.gx_engine import (
    GATE_WORK_MEM,
    RESULT_FORMAT,
    cache_data_docs_templates,
    data_docs_actions,
    preload,
    result_details,
    results_by_spec,
    sqlalchemy_url,
    to_check,
)
from veilflow.validate.report import CheckResult
from veilflow.zones.run_tables import CANARY

#: The suite's names, wherever they are defined: the expectations come from
#: ``veilflow.validate.expectations`` and what GX needs from ``veilflow.validate.gx_engine``;
#: running them with GX is this module's.
__all__ = [
    "DETERMINISTIC",
    "GATE_WORK_MEM",
    "PER_ROW",
    "RESULT_FORMAT",
    "ROWS_COLUMN",
    "ExpectationSpec",
    "build_expectations",
    "gx_type_names",
    "output_pattern",
    "preload",
    "run_expectations",
    "run_summary_expectations",
    "spec_key",
    "sqlalchemy_url",
    "summary_column",
    "token_format_parts",
    "token_like",
]

log = logging.getLogger(__name__)


def run_expectations(
    conn: psycopg.Connection[Any] | str,
    ctx: GateContext,
    specs: list[ExpectationSpec],
    docs_dir: Path | None,
) -> tuple[list[CheckResult], str | None]:
    """Validate ``specs`` on the candidate with GX, through its own connection to the
    server, database and login of ``conn`` (or the SQLAlchemy URL given instead, which lets
    another thread run it); returns check results and the Data Docs index path (None when
    ``docs_dir`` is None)."""
    started = time.perf_counter()
    url = conn if isinstance(conn, str) else sqlalchemy_url(conn)
    import great_expectations as gx

    cache_data_docs_templates()
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    # GX pins this module's logger to INFO at import, so its notes on temporary folders
    # would print even where the application logs warnings only; let it inherit the level.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.NOTSET)
    imported = time.perf_counter()
    context = gx.get_context(mode="ephemeral")
    context.variables.data_docs_sites = {}  # only this run's site, no temporary default one
    try:
        context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    except Exception:  # cosmetic only; older configs lack the setting
        log.debug("could not disable GX progress bars")
    tables = ctx.tables
    warnings.filterwarnings("ignore", message="You are using a generic SQLDatasource")
    source = context.data_sources.add_sql(  # type: ignore[call-arg]
        name="veilflow",
        connection_string=url,
        # Uniqueness groups a million values: give its hash table the gate's memory.
        kwargs={"connect_args": {"options": f"-c work_mem={GATE_WORK_MEM}"}},
    )
    # One table asset, one batch, one suite. Expectations on the real rows carry a row
    # condition instead of reading a query asset: GX reflects a query asset's columns by
    # running the query unbounded and fetching every row into Python (a whole-table copy
    # in memory), where a table's columns come from the catalog. Expectations with the same
    # row condition share one domain, so GX bundles their metrics into one scan.
    asset = source.add_table_asset(
        name="candidate", table_name=tables.candidate_name, schema_name="staging"
    )
    real_rows = Column(CANARY) == False  # noqa: E712 -- a GX condition, not a comparison
    suite_name = f"{ctx.policy.dataset}"
    expectations = []
    index: dict[int, ExpectationSpec] = {}
    for i, s in enumerate(specs):
        cls = getattr(gxe, s.gx_type)
        condition = {"row_condition": real_rows} if s.scope == "rows" else {}
        expectations.append(
            cls(
                **s.kwargs,
                **condition,
                meta={
                    "veilflow_check": s.check,
                    "veilflow_index": i,
                    "veilflow_scope": s.scope,
                    **s.meta,
                },
            )
        )
        index[i] = s
    # Built whole, then stored once: adding expectations one by one re-serializes the
    # stored suite each time.
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    batch_def = asset.add_batch_definition_whole_table("all")
    validations = [
        context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite_name}.{tables.tag}", data=batch_def, suite=suite)
        )
    ]

    actions = data_docs_actions(context, docs_dir)
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{suite_name}.{tables.tag}",
            validation_definitions=validations,
            actions=actions,
            result_format=RESULT_FORMAT,
        )
    )
    ran = time.perf_counter()
    result = checkpoint.run(run_id=None)
    seconds = time.perf_counter() - ran

    checks: list[CheckResult] = []
    for spec, r in results_by_spec([result], index):
        checks.append(
            to_check(
                spec, r.success, r.result or {}, r.exception_info, seconds / max(1, len(specs))
            )
        )
    docs = str(docs_dir / "index.html") if docs_dir is not None else None
    log.info(
        "GX: %d expectations in %.2fs (import %.2fs)",
        len(checks),
        time.perf_counter() - started,
        imported - started,
    )
    return checks, docs


#: The summary frame's column of rows written per chunk (canaries left out).
ROWS_COLUMN = "rows"


def summary_column(spec: ExpectationSpec) -> str | None:
    """The column of the chunk-summary frame that decides ``spec``, or None for the
    expectations GX checks on the candidate's catalog (schema)."""
    if spec.scope == "table":
        return None
    if spec.check == "row_count_parity":
        return ROWS_COLUMN
    if spec.gx_type == "ExpectColumnValuesToBeUnique":
        return f"unique|{spec.column}"
    return spec_key(spec)


def run_summary_expectations(
    conn: psycopg.Connection[Any] | str,
    ctx: GateContext,
    specs: list[ExpectationSpec],
    frame: Any,
    docs_dir: Path | None,
    *,
    suppressed: int = 0,
) -> tuple[list[CheckResult], str | None]:
    """Validate the suite with GX where the per-chunk gate already decided it (ADR 0016).

    ``frame`` (pandas) has one row per chunk and a column per decided expectation: the
    rows that broke it in that chunk (``summary_column``), and the chunk's real rows. GX
    validates every such expectation on that frame as the sum over the chunks: zero
    unexpected rows, or the source's row count. The schema expectations read the
    candidate's catalog through GX's SQL datasource, as before. Results and Data Docs come
    from one checkpoint per datasource; the results carry counts only."""
    started = time.perf_counter()
    url = conn if isinstance(conn, str) else sqlalchemy_url(conn)
    import great_expectations as gx

    cache_data_docs_templates()
    import great_expectations.expectations as gxe

    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.NOTSET)
    context = gx.get_context(mode="ephemeral")
    context.variables.data_docs_sites = {}
    try:
        context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    except Exception:  # cosmetic only
        log.debug("could not disable GX progress bars")
    warnings.filterwarnings("ignore", message="You are using a generic SQLDatasource")
    tables = ctx.tables
    name = ctx.policy.dataset
    table_specs = [(i, s) for i, s in enumerate(specs) if summary_column(s) is None]
    frame_specs = [(i, s) for i, s in enumerate(specs) if summary_column(s) is not None]

    def expectation(i: int, s: ExpectationSpec) -> Any:
        meta = {"veilflow_check": s.check, "veilflow_index": i, **s.meta}
        column = summary_column(s)
        if column is None:
            return getattr(gxe, s.gx_type)(**s.kwargs, meta={**meta, "veilflow_scope": "table"})
        wanted = ctx.rows_in if column == ROWS_COLUMN else 0
        return gxe.ExpectColumnSumToBeBetween(  # type: ignore[attr-defined]
            column=column,
            min_value=wanted,
            max_value=wanted,
            meta={**meta, "veilflow_scope": "chunk summaries", "replaces": s.gx_type},
        )

    actions = data_docs_actions(context, docs_dir)

    results: list[Any] = []
    ran = time.perf_counter()
    if frame_specs:
        source = context.data_sources.add_pandas(name="veilflow_summaries")
        asset = source.add_dataframe_asset(name="chunk_summaries")
        batch = asset.add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(
            gx.ExpectationSuite(
                name=f"{name}.chunks", expectations=[expectation(i, s) for i, s in frame_specs]
            )
        )
        vd = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{name}.chunks.{tables.tag}", data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{name}.chunks.{tables.tag}",
                validation_definitions=[vd],
                actions=actions,
                result_format=RESULT_FORMAT,
            )
        )
        results.append(checkpoint.run(batch_parameters={"dataframe": frame}))
    if table_specs:
        sql_source = context.data_sources.add_sql(name="veilflow", connection_string=url)
        table = sql_source.add_table_asset(
            name="candidate", table_name=tables.candidate_name, schema_name="staging"
        )
        suite = context.suites.add(
            gx.ExpectationSuite(
                name=f"{name}.schema", expectations=[expectation(i, s) for i, s in table_specs]
            )
        )
        vd = context.validation_definitions.add(
            gx.ValidationDefinition(
                name=f"{name}.schema.{tables.tag}",
                data=table.add_batch_definition_whole_table("all"),
                suite=suite,
            )
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{name}.schema.{tables.tag}",
                validation_definitions=[vd],
                actions=actions,
                result_format=RESULT_FORMAT,
            )
        )
        results.append(checkpoint.run())
    seconds = time.perf_counter() - ran
    index = dict(enumerate(specs))
    checked = int(frame[ROWS_COLUMN].sum()) if ROWS_COLUMN in frame else 0
    checks: list[CheckResult] = []
    for spec, r in results_by_spec(results, index):
        each = seconds / max(1, len(specs))
        if summary_column(spec) is None:
            checks.append(to_check(spec, r.success, r.result or {}, r.exception_info, each))
        else:
            checks.append(
                _summary_check(
                    spec, r.success, r.result or {}, r.exception_info, each, checked, suppressed
                )
            )
    checks.sort(key=lambda c: next(i for i, s in index.items() if _same(s, c)))
    log.info(
        "GX on chunk summaries: %d expectations in %.2fs",
        len(checks),
        time.perf_counter() - started,
    )
    return checks, (str(docs_dir / "index.html") if docs_dir is not None else None)


def _same(spec: ExpectationSpec, check: CheckResult) -> bool:
    return (
        spec.check == check.name
        and spec.column == check.column
        and check.details.get("expectation") == spec.gx_type
    )


def _summary_check(
    spec: ExpectationSpec,
    success: bool | None,
    result: dict[str, Any],
    exception: Any,
    seconds: float,
    checked: int,
    suppressed: int,
) -> CheckResult:
    details, raised = result_details(spec, exception, decided_by="chunk summaries")
    value = result.get("observed_value")
    observed = int(value) if value is not None else None
    if spec.check == "row_count_parity":
        # The chunks counted the rows they wrote; suppression deleted `suppressed` of them
        # afterwards (counted by the DELETE itself).
        observed = None if observed is None else observed - suppressed
        threshold: Any = spec.kwargs.get("value")
    else:
        threshold = 0
        details["checked"] = checked
    return CheckResult(
        spec.check,
        bool(success) and not raised,
        observed=observed,
        threshold=threshold,
        column=spec.column,
        details=details,
        seconds=seconds,
    )
