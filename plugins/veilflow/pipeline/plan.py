"""Compile a policy into a plan: one configured operator per declared column.

This is where operator parameters are validated against each operator's own config model,
so a typo in a parameter is reported with the policy file, line and field before any data
is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from veilflow.errors import PolicyError
from veilflow.policy.model import Policy
from veilflow.registry import OPERATORS
from veilflow.transform.base import ColumnContext, Operator, OperatorConfig
from veilflow.transform.keys import KeyProvider
from veilflow.transform.operators.basic import Drop


@dataclass(frozen=True)
class ColumnPlan:
    name: str
    action: str
    operator: Operator  # type: ignore[type-arg]

    @property
    def dropped(self) -> bool:
        return isinstance(self.operator, Drop)


@dataclass(frozen=True)
class Plan:
    policy: Policy
    columns: list[ColumnPlan]

    @property
    def kept(self) -> list[ColumnPlan]:
        """Columns present in the output, in policy order."""
        return [c for c in self.columns if not c.dropped]


@dataclass(frozen=True)
class CheckedColumn:
    """A column's operator class and its validated parameters, before any key is bound."""

    name: str
    action: str
    operator: type[Operator]  # type: ignore[type-arg]
    config: OperatorConfig


def check_operators(policy: Policy) -> list[CheckedColumn]:
    """Validate every column's operator and parameters against the operator's config
    model, with no key and no database; ``PolicyError`` names file, line and field."""
    checked = []
    for name, spec in policy.columns.items():
        cls = OPERATORS.get(spec.action)
        if cls is None:
            raise PolicyError(
                f"unknown operator {spec.action!r}; known: {', '.join(sorted(OPERATORS))}",
                file=policy.file,
                line=policy.line_of("columns", name, "action"),
                field=f"columns.{name}.action",
            )
        params = spec.params
        # Operators that scan text take the policy's detection settings unless given.
        if "detection" in cls.Config.model_fields and "detection" not in params:
            params = {**params, "detection": policy.detection}
        try:
            config = cls.Config(**params)
        except ValidationError as exc:
            err = exc.errors()[0]
            param = ".".join(str(p) for p in err["loc"]) or spec.action
            msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
            raise PolicyError(
                f"{msg} (operator {spec.action})",
                file=policy.file,
                line=policy.line_of("columns", name, *[str(p) for p in err["loc"]]),
                field=f"columns.{name}.{param}",
            ) from None
        checked.append(CheckedColumn(name, spec.action, cls, config))
    return checked


def plan_policy(policy: Policy, keys: KeyProvider) -> Plan:
    """Bind each checked column's operator to the data keys of the policy's scope."""
    plans = []
    for col in check_operators(policy):
        ctx = ColumnContext(dataset=policy.scope, column=col.name, keys=keys)
        plans.append(ColumnPlan(col.name, col.action, col.operator(col.config, ctx)))
    return Plan(policy=policy, columns=plans)
