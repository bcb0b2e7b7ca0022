"""`veilflow scan`, `veilflow detect` and `veilflow policy draft` on files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from veilflow.cli import app
from veilflow.errors import SourceError
from veilflow.pipeline.seed import _Pools, customers_frame
from veilflow.policy.loader import load_policy


@pytest.fixture(scope="module")
def customers_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    frame = customers_frame(1, 300, 42, _Pools(42))
    path = tmp_path_factory.mktemp("scan") / "customers.csv"
    frame.to_csv(path, index=False)
    return path, frame


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_scan_table_and_json(customers_csv: tuple[Path, pd.DataFrame]) -> None:
    path, frame = customers_csv
    code, out = run("scan", str(path), "--sample", "200")
    assert code == 0
    assert "credit_card" in out and "CREDIT_CARD" in out and "***@" in out
    code, out = run("scan", str(path), "--format", "json", "--sample", "200")
    assert code == 0
    report = json.loads(out)
    got = {c["column"]: c["entity"] for c in report["columns"]}
    assert got["email"] == "EMAIL_ADDRESS" and got["note"] == "FREE_TEXT"
    assert got["amount"] is None
    for column in ("full_name", "email", "ssn", "credit_card", "iban"):
        for value in frame[column].dropna().head(30):
            assert value not in out


def test_scan_parquet(tmp_path: Path, customers_csv: tuple[Path, pd.DataFrame]) -> None:
    _, frame = customers_csv
    path = tmp_path / "c.parquet"
    frame.to_parquet(path)
    code, out = run("scan", str(path), "--format", "json", "--sample", "100")
    assert code == 0
    assert json.loads(out)["rows_sampled"] == 100


def test_detect_jsonl_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "docs.jsonl"
    docs = [
        {"id": 1, "text": "Mail jane@example.org or call +1 415 555 0132.", "lang": "en"},
        {"id": 2, "text": "nothing to see"},
        {"id": 3, "text": None},
    ]
    src.write_text("\n".join(json.dumps(d) for d in docs) + "\nnot json\n", encoding="utf-8")
    dst = tmp_path / "spans.jsonl"
    code, _ = run("detect", "--input", str(src), "--output", str(dst), "--batch-size", "2")
    assert code == 0
    rows = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[0]["lang"] == "en"
    text = rows[0]["text"]
    assert [(text[s["start"] : s["end"]], s["entity"]) for s in rows[0]["spans"]] == [
        ("jane@example.org", "EMAIL_ADDRESS"),
        ("+1 415 555 0132", "PHONE_NUMBER"),
    ]
    assert rows[1]["spans"] == [] and rows[2]["spans"] == []


def test_policy_draft_is_a_valid_policy(
    tmp_path: Path, customers_csv: tuple[Path, pd.DataFrame]
) -> None:
    path, _ = customers_csv
    out = tmp_path / "customers.yaml"
    code, _ = run("policy", "draft", str(path), "--output", str(out), "--sample", "200")
    assert code == 0
    policy = load_policy(out)
    assert set(policy.columns) == set(pd.read_csv(path, nrows=1).columns)
    assert policy.source.key == "customer_id"
    assert policy.columns["email"].action == "tokenize"
    assert policy.columns["note"].action == "scrub_text"
    assert "# EMAIL_ADDRESS" in out.read_text()
    with pytest.raises(SourceError, match="--force"):  # never overwrites silently
        run("policy", "draft", str(path), "--output", str(out))
