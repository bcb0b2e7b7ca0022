"""Structured gate results: pass/fail, observed value and threshold per check. Plain data,
JSON-able, never a raw value — ready for the run manifest and lineage assertions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    observed: Any = None
    threshold: Any = None
    column: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GateReport:
    checks: list[CheckResult] = field(default_factory=list)
    suppressed_rows: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    data_docs: str | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def reasons(self) -> list[dict[str, Any]]:
        """Machine-readable reasons, one per failed check."""
        return [
            {
                "check": c.name,
                "column": c.column,
                "observed": c.observed,
                "threshold": c.threshold,
                **({"details": c.details} if c.details else {}),
            }
            for c in self.failures
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "suppressed_rows": self.suppressed_rows,
            "metrics": self.metrics,
            "data_docs": self.data_docs,
        }
