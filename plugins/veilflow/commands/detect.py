"""`veilflow` commands for the detect area: ``scan``, ``detect`` and ``policy draft``.

None of them prints a raw value: reports show masked shapes (``j***@e***.com``) at most.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from veilflow.commands import command_group
from veilflow.errors import SourceError

log = logging.getLogger(__name__)

policy_app = command_group("Policy files: draft from a scan.")

_FILE_SUFFIXES = (".csv", ".parquet", ".pq", ".jsonl", ".ndjson", ".tsv")


def _settings(policy: str | None) -> Any:
    from veilflow.policy.detection import DetectionSettings

    if policy is None:
        return DetectionSettings()
    from veilflow.policy.loader import load_policy

    return load_policy(policy).detection


def _sample_file(path: Path, rows: int) -> Any:
    import pandas as pd

    if not path.exists():
        raise SourceError(f"file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        batches = []
        got = 0
        for batch in pf.iter_batches(batch_size=min(rows, 65536)):
            batches.append(batch.to_pandas())
            got += batch.num_rows
            if got >= rows:
                break
        frame = pd.concat(batches, ignore_index=True).head(rows) if batches else pd.DataFrame()
    elif suffix in (".jsonl", ".ndjson"):
        frame = pd.read_json(path, lines=True, nrows=rows, dtype=False)
    else:
        frame = pd.read_csv(
            path,
            nrows=rows,
            dtype=str,
            keep_default_na=True,
            sep="\t" if suffix == ".tsv" else ",",
            encoding_errors="replace",
        )
    for c in frame.columns:
        frame[c] = frame[c].map(lambda v: None if v is None or pd.isna(v) else str(v))
    return frame


def scan_target(target: str, sample: int, settings: Any) -> Any:
    """The ``ScanReport`` of a CSV/Parquet/JSONL file or a restricted-zone table."""
    from veilflow.detect.report import ScanReport

    path = Path(target)
    if path.suffix.lower() in _FILE_SUFFIXES or path.exists():
        frame = _sample_file(path, sample)
        return ScanReport.of_frame(path.stem, str(path), frame, settings)
    from veilflow.detect.store import sample_table
    from veilflow.zones.db import connect

    table = target if "." in target else f"restricted.{target}"
    with connect() as conn:
        frame = sample_table(conn, table, sample)
    return ScanReport.of_frame(table.split(".")[1], table, frame, settings)


def scan(
    target: Annotated[
        str,
        typer.Argument(
            help="A table (`restricted.<name>` or `<name>`) or a CSV / Parquet / JSONL file."
        ),
    ],
    sample: Annotated[int, typer.Option(min=10, help="Rows to sample.")] = 1000,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    policy: Annotated[
        str | None,
        typer.Option(help="Use this policy's detection: settings (custom recognizers, lists)."),
    ] = None,
) -> None:
    """Classify every column: PII entity, confidence, hit rate, suggested action."""
    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format must be 'table' or 'json'")
    report = scan_target(target, sample, _settings(policy))
    typer.echo(report.to_json() if fmt == "json" else report.to_table())


def _read_docs(path: str, text_field: str) -> Iterator[tuple[dict[str, Any] | None, object, str]]:
    """(document, text, raw line) per input line; a line that is not a JSON object yields
    (None, None, reason) so it can be reported without being echoed."""
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        for n, raw in enumerate(stream, 1):
            if not raw.strip():
                continue
            try:
                doc = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield None, None, f"line {n}: not UTF-8"
                continue
            except json.JSONDecodeError:
                yield None, None, f"line {n}: not JSON"
                continue
            if not isinstance(doc, dict):
                yield None, None, f"line {n}: not a JSON object"
                continue
            yield doc, doc.get(text_field), ""
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def detect(
    input: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="JSON Lines in ('-' = stdin); each object has a text field."
        ),
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="JSON Lines out ('-' = stdout).")],
    text_field: Annotated[str, typer.Option(help="The field holding the text.")] = "text",
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Worker processes (default: the policy's detection.workers, else 1)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Documents per batch.")] = 512,
    policy: Annotated[
        str | None, typer.Option(help="Use this policy's detection: settings.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Trained detector version (`veilflow detector list`), `current` or `none`; "
            "default: the policy's detection.detector, else current.",
        ),
    ] = None,
) -> None:
    """Find PII spans in documents in bulk: writes each document back with
    ``spans: [{start, end, entity, score}]`` (offsets in characters). Streams; memory stays
    constant whatever the input size."""
    from veilflow.detect.model import version_of
    from veilflow.detect.scan_pool import scan_stream

    settings = _settings(policy)
    if model is not None:
        settings = settings.model_validate({**settings.model_dump(), "detector": model})
    detector_version = version_of(settings.detector)  # fails early on an unknown version
    docs: deque[tuple[dict[str, Any] | None, str]] = deque()
    counts = {"documents": 0, "spans": 0, "unscannable": 0, "skipped": 0}

    def texts() -> Iterator[object]:
        for doc, text, problem in _read_docs(input, text_field):
            docs.append((doc, problem))
            yield text if doc is not None else None

    out = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")
    try:
        for batch in scan_stream(
            texts(), settings, workers=workers or settings.workers, batch_size=batch_size
        ):
            for k, spans in enumerate(batch.spans):
                doc, problem = docs.popleft()
                if doc is None:
                    counts["skipped"] += 1
                    log.warning("skipped %s", problem)
                    continue
                doc = dict(doc)
                doc["spans"] = [s.as_dict() for s in spans]
                if k in batch.reasons:
                    doc["unscannable"] = batch.reasons[k]
                    counts["unscannable"] += 1
                counts["documents"] += 1
                counts["spans"] += len(spans)
                out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    typer.echo(
        f"{counts['documents']} documents, {counts['spans']} spans, "
        f"detector {detector_version or 'none'}"
        + (f", {counts['unscannable']} unscannable (marked)" if counts["unscannable"] else "")
        + (f", {counts['skipped']} lines skipped (not JSON objects)" if counts["skipped"] else ""),
        err=True,
    )


@policy_app.command("draft")
def policy_draft(
    table: Annotated[
        str,
        typer.Argument(help="A table (`restricted.<name>` or `<name>`) or a CSV / Parquet file."),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    sample: Annotated[int, typer.Option(min=10, help="Rows to sample.")] = 1000,
    key: Annotated[str | None, typer.Option(help="The table's key column.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starting policy YAML from a scan: every column with a suggested operator and
    the evidence as a comment, for a steward to review."""
    from veilflow.policy.detection import DetectionSettings

    report = scan_target(table, sample, DetectionSettings())
    name = table if not Path(table).suffix else f"restricted.{Path(table).stem}"
    text = report.draft_policy(name, key)
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists() and not force:
        raise SourceError(f"{output} exists; pass --force to overwrite it")
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output} ({len(report.verdicts)} columns)", err=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("scan")(scan)
    app.command("detect")(detect)
    app.add_typer(policy_app, name="policy")
