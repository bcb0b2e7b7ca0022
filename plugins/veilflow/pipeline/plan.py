"""Compile a policy into a plan: one configured operator per declared column.

Operator parameters were validated against each operator's own config model when the
policy loaded (``veilflow.policy.operators``); here each column gets its operator class and,
given a key provider, its operator bound to the data keys of the policy's scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from veilflow.policy.model import Policy
from veilflow.policy.operators import OperatorConfig
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


@dataclass(frozen=True)
class CheckedColumn:
    """A column's operator class and its validated parameters, before any key is bound."""

    name: str
    action: str
    operator: type[Operator]  # type: ignore[type-arg]
    config: OperatorConfig


def check_operators(policy: Policy) -> list[CheckedColumn]:
    """Every column's operator class and validated parameters, with no key and no database.
    The parameters were checked as the policy loaded (``ColumnSpec.config``); operators that
    scan text take the policy's ``detection:`` settings here unless the column gives its own."""
    checked = []
    for name, spec in policy.columns.items():
        cls = OPERATORS[spec.action]
        config = spec.config
        if "detection" in type(config).model_fields and "detection" not in spec.params:
            config = type(config).model_validate({**spec.params, "detection": policy.detection})
        checked.append(CheckedColumn(name, spec.action, cls, config))
    return checked


def plan_policy(policy: Policy, keys: KeyProvider) -> Plan:
    """Bind each checked column's operator to the data keys of the policy's scope."""
    plans = []
    for col in check_operators(policy):
        ctx = ColumnContext(dataset=policy.scope, column=col.name, keys=keys)
        plans.append(ColumnPlan(col.name, col.action, col.operator(col.config, ctx)))
    return Plan(policy=policy, columns=plans)
