"""The scan report of a table or file: a verdict per column, rendered as a table, JSON, a
draft policy, or rows for the governance store. Holds counts and masked shapes only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from veilflow.detect.column_evidence import FREE_TEXT, IDENTIFIER
from veilflow.detect.columns import ColumnVerdict, classify_columns
from veilflow.policy.detection import DetectionSettings


@dataclass
class ScanReport:
    """What ``veilflow scan`` found in one dataset."""

    dataset: str
    source: str
    rows_sampled: int
    verdicts: list[ColumnVerdict]
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @classmethod
    def of_frame(
        cls,
        dataset: str,
        source: str,
        frame: pd.DataFrame,
        settings: DetectionSettings | None = None,
    ) -> ScanReport:
        return cls(dataset, source, len(frame), classify_columns(frame, settings))

    def verdict(self, column: str) -> ColumnVerdict | None:
        return next((v for v in self.verdicts if v.column == column), None)

    def counts(self) -> dict[str, dict[str, int]]:
        """Counts per entity per column (for the run manifest and the lineage facet)."""
        out: dict[str, dict[str, int]] = {}
        for v in self.verdicts:
            if v.entity == FREE_TEXT:
                out[v.column] = dict(sorted(v.text_entities.items()))
            elif v.entity is not None:
                out[v.column] = {v.entity: round(v.hit_rate * v.sampled)}
            else:
                out[v.column] = {}
        return out

    def rows(self) -> list[dict[str, Any]]:
        """One row per (column, entity) for ``governance.scan_results``; no values."""
        rows: list[dict[str, Any]] = []
        for v in self.verdicts:
            if v.entity == FREE_TEXT and v.text_entities:
                for entity, n in sorted(v.text_entities.items()):
                    scanned = min(v.sampled, 200) or 1
                    rows.append(
                        {
                            "column": v.column,
                            "entity": entity,
                            "count": n,
                            "hit_rate": min(1.0, n / scanned),
                            "confidence": v.confidence,
                        }
                    )
            else:
                rows.append(
                    {
                        "column": v.column,
                        "entity": v.entity or "NONE",
                        "count": round(v.hit_rate * v.sampled) if v.entity else 0,
                        "hit_rate": v.hit_rate if v.entity else 0.0,
                        "confidence": v.confidence,
                    }
                )
        return rows

    def to_json(self) -> str:
        return json.dumps(
            {
                "dataset": self.dataset,
                "source": self.source,
                "rows_sampled": self.rows_sampled,
                "created_at": self.created_at,
                "columns": [v.as_dict() for v in self.verdicts],
            },
            indent=2,
            ensure_ascii=False,
        )

    def to_table(self) -> str:
        head = ("column", "entity", "conf", "hit rate", "sampled", "suggested action", "shape")
        body = []
        for v in self.verdicts:
            action = v.action + (
                " " + ", ".join(f"{k}={val}" for k, val in v.params.items()) if v.params else ""
            )
            entity = v.entity or "-"
            if v.entity == FREE_TEXT and v.text_entities:
                entity += " (" + ", ".join(sorted(v.text_entities)) + ")"
            body.append(
                (
                    v.column,
                    entity,
                    f"{v.confidence:.2f}",
                    f"{v.hit_rate:.0%}",
                    str(v.sampled),
                    action,
                    v.shape,
                )
            )
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        out = [
            f"{self.dataset} ({self.source}): {self.rows_sampled} rows sampled",
            line.format(*head),
            line.format(*("-" * w for w in widths)),
        ]
        out += [line.format(*r).rstrip() for r in body]
        return "\n".join(out)

    def draft_policy(self, table: str, key: str | None = None) -> str:
        """A starting policy YAML: every column declared with a suggested operator and a
        comment with the evidence, for a steward to review."""
        schema_table = table if "." in table else f"restricted.{table}"
        name = schema_table.split(".")[1]
        if key is None:
            ids = [v.column for v in self.verdicts if v.entity == IDENTIFIER]
            key = ids[0] if ids else self.verdicts[0].column
        lines = [
            (
                f"# Draft policy for {schema_table}, generated by `veilflow policy draft` from a "
                f"scan of {self.rows_sampled} sampled rows on {self.created_at}."
            ),
            "# Review every column before use: the suggestions come from a sample.",
            f"dataset: {name}",
            f"source: {{table: {schema_table}, key: {key}}}",
            f"target: {{table: anonymized.{name}}}",
            "unlisted: fail",
            "",
            "columns:",
        ]
        width = max(len(v.column) for v in self.verdicts) + 1
        for v in self.verdicts:
            params = dict(v.params)
            if v.action == "date_shift":
                params.setdefault("subject", key)
            spec = (
                "{"
                + ", ".join(
                    [f"action: {v.action}"]
                    + [f"{k}: {_yaml_scalar(val)}" for k, val in params.items()]
                )
                + "}"
            )
            what = v.entity or "no PII found"
            comment = f"# {what}, confidence {v.confidence:.2f}: {v.evidence}"
            lines.append(f"  {(v.column + ':').ljust(width)} {spec}  {comment}")
        return "\n".join(lines) + "\n"


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value))
