"""Great Expectations as the gate's engine: the SQLAlchemy URL GX connects with, its imports
preloaded off the critical path, its Data Docs templates compiled once, the result format
that carries counts and never a value, and a GX result turned into a ``CheckResult``.

``validate.gx_suite`` builds the suites and runs them with what is here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from veilflow.validate.expectations import ExpectationSpec
from veilflow.validate.report import CheckResult

log = logging.getLogger(__name__)

#: PostgreSQL ``work_mem`` of the gate's sessions: a million values' hash table fits.
GATE_WORK_MEM = "256MB"
#: What GX may put in a result: counts, never a value.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
}


def sqlalchemy_url(conn: psycopg.Connection[Any]) -> str:
    """A SQLAlchemy URL (psycopg 3 driver) for the server, database and login of ``conn``."""
    from sqlalchemy.engine import URL

    info = conn.info
    host = info.host
    query: dict[str, str] = {}
    url_host: str | None = host
    if host.startswith("/"):
        query["host"] = host
        url_host = None
    url = URL.create(
        "postgresql+psycopg",
        username=info.user,
        password=info.password or None,
        host=url_host,
        port=info.port if url_host else None,
        database=info.dbname,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def preload() -> None:
    """Import the parts of Great Expectations the gate uses (safe to call from a thread:
    Python's import lock makes a concurrent import wait for this one). Never raises: the
    gate imports again and reports any error itself."""
    try:
        import great_expectations.expectations  # noqa: F401
        from great_expectations.checkpoint.actions import UpdateDataDocsAction  # noqa: F401
        from great_expectations.expectations.row_conditions import Column  # noqa: F401

        cache_data_docs_templates()
    except Exception:
        log.debug("preloading Great Expectations failed", exc_info=True)


_TEMPLATE_CACHE: list[Any] = []


def cache_data_docs_templates() -> None:
    """Share compiled Data Docs templates between GX's page views, runs and processes.

    GX makes a new Jinja environment for every page view it renders, so each run compiled
    its ~100 templates again: about as long as the rest of the gate on a run of a few
    thousand rows. Jinja's file bytecode cache (its own folder, per user, mode 0700, in the
    temp folder; keyed by template name and source checksum) skips the compiling and only
    the compiling: the same templates render the same pages. Idempotent."""
    if _TEMPLATE_CACHE:
        return
    from great_expectations.render.view import view
    from jinja2 import FileSystemBytecodeCache

    cache = FileSystemBytecodeCache()
    original = view.DefaultJinjaView.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.env.bytecode_cache = cache

    view.DefaultJinjaView.__init__ = init  # type: ignore[method-assign]
    _TEMPLATE_CACHE.append(cache)


def data_docs_actions(context: Any, docs_dir: Path | None) -> list[Any]:
    """The checkpoint actions that write a run's Data Docs into ``docs_dir`` (none without)."""
    if docs_dir is None:
        return []
    from great_expectations.checkpoint.actions import UpdateDataDocsAction

    docs_dir.mkdir(parents=True, exist_ok=True)
    context.add_data_docs_site(
        site_name="run",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return [UpdateDataDocsAction(name="data_docs", site_names=["run"])]


def results_by_spec(
    checkpoint_results: list[Any], index: dict[int, ExpectationSpec]
) -> Iterator[tuple[ExpectationSpec, Any]]:
    """Each expectation result of the checkpoint runs with the spec it came from (its
    ``veilflow_index`` meta into ``index``); results of no spec are left out."""
    for result in checkpoint_results:
        for run_result in result.run_results.values():
            for r in run_result.results:
                meta = (r.expectation_config.meta if r.expectation_config else None) or {}
                spec = index.get(int(meta.get("veilflow_index", -1)))
                if spec is not None:
                    yield spec, r


def result_details(
    spec: ExpectationSpec, exception: Any, *, decided_by: str | None = None
) -> tuple[dict[str, Any], bool]:
    """The details every GX check result carries (engine, expectation, the spec's meta and
    GX's error message when the expectation raised; never a value), and whether it raised."""
    details: dict[str, Any] = {"engine": "great_expectations", "expectation": spec.gx_type}
    if decided_by is not None:
        details["decided_by"] = decided_by
    details.update({k: v for k, v in spec.meta.items() if k != "rows_in"})
    raised = isinstance(exception, dict) and bool(exception.get("raised_exception"))
    if raised:
        details["error"] = str(exception.get("exception_message") or "")[:200]
    return details, raised


def to_check(
    spec: ExpectationSpec,
    success: bool | None,
    result: dict[str, Any],
    exception: Any,
    seconds: float,
) -> CheckResult:
    details, raised = result_details(spec, exception)
    if "unexpected_count" in result:
        observed: Any = int(result["unexpected_count"])
        threshold: Any = 0
        details["checked"] = int(result.get("element_count", 0))
    else:
        observed = result.get("observed_value")
        threshold = _threshold(spec)
        mismatch = (
            result.get("details", {}).get("mismatched")
            if isinstance(result.get("details"), dict)
            else None
        )
        if mismatch:
            details["mismatched"] = mismatch  # column names only
    return CheckResult(
        spec.check,
        bool(success) and not raised,
        observed=observed,
        threshold=threshold,
        column=spec.column,
        details=details,
        seconds=seconds,
    )


def _threshold(spec: ExpectationSpec) -> Any:
    kw = spec.kwargs
    for key in ("value", "column_set", "type_list", "regex", "like_pattern", "value_set"):
        if key in kw:
            return kw[key]
    return None
