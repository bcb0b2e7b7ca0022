"""`veilflow risk` on CSV and Parquet files: k, l, t and the class-size distribution."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from veilflow.cli import app
from veilflow.commands.validate import size_distribution

LI = pd.DataFrame(
    {
        "zip": ["4767*"] * 3 + ["4790*"] * 3 + ["476**"] * 3,
        "age": ["<=40"] * 3 + [">=40"] * 3 + ["3*"] * 3,
        "salary": [3, 4, 5, 6, 11, 8, 7, 9, 10],
    }
)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_risk_of_a_file_as_json(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"li{suffix}"
    LI.to_csv(path, index=False) if suffix == ".csv" else LI.to_parquet(path)
    out = CliRunner().invoke(
        app, ["risk", str(path), "--qi", "zip,age", "--sensitive", "salary", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert (data["k"], data["l"], data["classes"], data["rows"]) == (3, 3, 3, 9)
    assert data["t"] == pytest.approx(0.375)  # Li et al.'s ordered-distance example
    assert data["class_sizes"] == {"3": 3}


def test_risk_text_report(tmp_path: Path) -> None:
    path = tmp_path / "li.csv"
    LI.to_csv(path, index=False)
    out = CliRunner().invoke(
        app, ["risk", str(path), "--qi", "zip", "--sensitive", "salary", "--distance", "equal"]
    )
    assert out.exit_code == 0, out.output
    assert "k = 3" in out.output and "l = 3" in out.output and "equal distance" in out.output


def test_unknown_column_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "li.csv"
    LI.to_csv(path, index=False)
    out = CliRunner().invoke(app, ["risk", str(path), "--qi", "zipcode"])
    assert out.exit_code != 0


def test_size_distribution_buckets_many_sizes() -> None:
    sizes = {s: 1 for s in range(1, 30)}
    rows = size_distribution(sizes)
    assert rows[0] == ("1", 1, 1)
    assert sum(r[1] for r in rows) == 29 and sum(r[2] for r in rows) == sum(range(1, 30))
    assert size_distribution({2: 5, 7: 1}) == [("2", 5, 10), ("7", 1, 7)]
