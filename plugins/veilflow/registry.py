"""Every operator the policy's ``action:`` can name. Adding one is one line here.

It sits above ``transform`` and ``detect`` because operators come from both (``scrub_text``
lives with detection).
"""

from __future__ import annotations

from veilflow.detect.scrub import ScrubText
from veilflow.transform.base import Operator
from veilflow.transform.operators.basic import Drop, Keep, Mask, Redact
from veilflow.transform.operators.date_shift import DateShift
from veilflow.transform.operators.fpe import FF1Encrypt
from veilflow.transform.operators.generalize import Generalize
from veilflow.transform.operators.suppress import Suppress
from veilflow.transform.operators.surrogate import Surrogate
from veilflow.transform.operators.tokenize import Tokenize

OPERATORS: dict[str, type[Operator]] = {  # type: ignore[type-arg]
    op.name: op
    for op in (
        Keep,
        Drop,
        Mask,
        Redact,
        Tokenize,
        FF1Encrypt,
        Surrogate,
        Generalize,
        DateShift,
        Suppress,
        ScrubText,
    )
}


def operator_class(name: str) -> type[Operator]:  # type: ignore[type-arg]
    """The operator registered under ``name``; KeyError when there is none."""
    return OPERATORS[name]
