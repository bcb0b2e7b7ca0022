"""Every registered operator is documented, with every parameter it accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from veilflow.registry import OPERATORS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "operators.md").read_text()


def section(name: str) -> str:
    m = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", DOC, re.S | re.M)
    assert m, f"docs/operators.md has no section '## {name}'"
    return m.group(1)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operator_has_a_section_and_a_table_row(name: str) -> None:
    section(name)
    assert f"| `{name}` |" in DOC, f"docs/operators.md table lacks {name}"
    assert (OPERATORS[name].__doc__ or "").strip(), f"{name} has no docstring"


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_every_parameter_is_documented(name: str) -> None:
    text = section(name)
    cfg = OPERATORS[name].Config
    for field, info in cfg.model_fields.items():
        if field == "detection":  # filled from the policy's detection: section
            continue
        shown = info.alias or field
        assert shown in text, f"parameter {shown!r} of {name} is not in docs/operators.md"
