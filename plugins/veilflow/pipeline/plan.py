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
from veilflow.transform.base import ColumnContext, Operator
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


def plan_policy(policy: Policy, keys: KeyProvider) -> Plan:
    """Validate every column's operator and parameters; ``PolicyError`` names file/line."""
    plans = []
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
        ctx = ColumnContext(dataset=policy.scope, column=name, keys=keys)
        plans.append(ColumnPlan(name, spec.action, cls(config, ctx)))
    return Plan(policy=policy, columns=plans)
