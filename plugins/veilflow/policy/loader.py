"""Load a policy file once: parse YAML keeping line numbers, validate, attach the lines so
every later error can name the file, the line and the field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from veilflow.errors import PolicyError
from veilflow.policy.dataset import DatasetPolicy, refuse_single_table_sections
from veilflow.policy.model import Policy

M = TypeVar("M", bound=BaseModel)
_NAMED = re.compile(r"^Value error, ([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*): (.*)$", re.S)


def _lines(node: yaml.Node, path: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    """Record the line of every key (and list item) below ``node``, by its path."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            out[child] = key.start_mark.line + 1
            _lines(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, str(i))] = item.start_mark.line + 1
            _lines(item, (*path, str(i)), out)


def _validate(model: type[M], data: Any, lines: dict[tuple[str, ...], int], file: str) -> M:
    """``model`` validated from ``data``; ``PolicyError`` names file, line and field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        msg = err["msg"]
        # A model-wide check names the field it is about: "Value error, a.b.c: ...".
        named = _NAMED.match(msg) if not loc else None
        if named is not None:
            loc = tuple(named.group(1).split("."))
            msg = named.group(2)
        line = None
        for n in range(len(loc), 0, -1):
            if loc[:n] in lines:
                line = lines[loc[:n]]
                break
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        raise PolicyError(msg, file=file, line=line, field=".".join(loc) or None) from None


def _compose(text: str, file: str) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """The YAML mapping of a policy file and the line of every key in it."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise PolicyError(f"malformed YAML: {problem}", file=file, line=line) from None
    if node is None or not isinstance(data, dict):
        raise PolicyError(
            "a policy is a YAML mapping (dataset, source, target, columns, ...)", file=file, line=1
        )
    lines: dict[tuple[str, ...], int] = {(): 1}
    _lines(node, (), lines)
    return data, lines


def parse_any_policy(text: str, file: str = "<policy>") -> Policy | DatasetPolicy:
    """A single-table policy, or a dataset of several tables when it declares ``tables:``."""
    data, lines = _compose(text, file)
    if "tables" not in data:
        return _single(data, lines, file)
    refuse_single_table_sections(data, lines, file)
    dataset = _validate(DatasetPolicy, data, lines, file)
    dataset._file = file
    dataset._lines = lines
    dataset.table_policies()  # each table's errors, with their lines, now
    return dataset


def _single(data: dict[str, Any], lines: dict[tuple[str, ...], int], file: str) -> Policy:
    policy = _validate(Policy, data, lines, file)
    policy._file = file
    policy._lines = lines
    return policy


def parse_policy(text: str, file: str = "<policy>") -> Policy:
    """Parse and validate policy text; ``PolicyError`` names file, line and field."""
    data, lines = _compose(text, file)
    if "tables" in data:
        raise PolicyError(
            "this policy declares several tables (a dataset policy): run it with "
            "`veilflow run` or its DAG, which take either kind",
            file=file,
            line=lines.get(("tables",)),
            field="tables",
        )
    return _single(data, lines, file)


def _read(path: str | Path) -> tuple[Path, str]:
    p = Path(path)
    try:
        return p, p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError("policy file not found", file=str(p)) from None
    except UnicodeDecodeError:
        raise PolicyError("policy file is not UTF-8 text", file=str(p)) from None


def load_any_policy(path: str | Path) -> Policy | DatasetPolicy:
    """Read and validate the policy at ``path``: one table, or a dataset of several."""
    p, text = _read(path)
    return parse_any_policy(text, file=str(p))


def load_dataset_policy(path: str | Path) -> DatasetPolicy:
    """Read and validate the dataset policy (several tables) at ``path``."""
    policy = load_any_policy(path)
    if not isinstance(policy, DatasetPolicy):
        raise PolicyError("not a dataset policy: it declares no tables:", file=str(path))
    return policy


def load_policy(path: str | Path) -> Policy:
    """Read and validate the policy at ``path``."""
    p, text = _read(path)
    return parse_policy(text, file=str(p))


def discover_policies(folder: str | Path) -> list[Path]:
    """Every ``*.yaml`` / ``*.yml`` policy file in ``folder``, sorted."""
    d = Path(folder)
    return sorted([*d.glob("*.yaml"), *d.glob("*.yml")])


@dataclass(frozen=True)
class PolicyFolder:
    """The policy files of one folder: those that can be used, by file (single tables in
    ``policies``, datasets of several tables in ``datasets``), and an error for each of the
    others."""

    policies: dict[Path, Policy] = field(default_factory=dict)
    errors: tuple[PolicyError, ...] = ()
    datasets: dict[Path, DatasetPolicy] = field(default_factory=dict)


def _claims(policy: Policy | DatasetPolicy) -> list[str]:
    """The dataset names a policy records runs under."""
    if isinstance(policy, DatasetPolicy):
        return [policy.dataset, *(policy.table_dataset(t) for t in policy.tables)]
    return [policy.dataset]


def load_policy_folder(folder: str | Path) -> PolicyFolder:
    """Load every policy of ``folder``. A file that does not load is an error of its own; two
    files with the same dataset (a dataset's tables count as datasets ``<dataset>__<table>``)
    are both left out (neither silently replaces the other), with an error naming both."""
    loaded: dict[Path, Policy | DatasetPolicy] = {}
    errors: list[PolicyError] = []
    for path in discover_policies(folder):
        try:
            loaded[path] = load_any_policy(path)
        except PolicyError as exc:
            errors.append(exc)
    by_dataset: dict[str, list[Path]] = {}
    for path, policy in loaded.items():
        for name in _claims(policy):
            by_dataset.setdefault(name, []).append(path)
    clashing: dict[Path, PolicyError] = {}
    for dataset, paths in by_dataset.items():
        if len(paths) < 2:
            continue
        places = {path: f"{path}:{loaded[path].line_of('dataset')}" for path in paths}
        for path in paths:
            others = " and ".join(places[p] for p in paths if p != path)
            clashing.setdefault(
                path,
                PolicyError(
                    f"dataset {dataset!r} is also the dataset of {others}; a dataset has one "
                    "policy, so none of them is used until the others name another dataset "
                    "or are removed",
                    file=str(path),
                    line=loaded[path].line_of("dataset"),
                    field="dataset",
                ),
            )
    errors.extend(clashing.values())
    usable = {p: policy for p, policy in loaded.items() if p not in clashing}
    return PolicyFolder(
        policies={p: x for p, x in usable.items() if isinstance(x, Policy)},
        errors=tuple(errors),
        datasets={p: x for p, x in usable.items() if isinstance(x, DatasetPolicy)},
    )
