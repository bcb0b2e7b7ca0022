"""Load a policy file once: parse YAML keeping line numbers, validate, attach the lines so
every later error can name the file, the line and the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from veilflow.errors import PolicyError
from veilflow.policy.model import Policy


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


def parse_policy(text: str, file: str = "<policy>") -> Policy:
    """Parse and validate policy text; ``PolicyError`` names file, line and field."""
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
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        line = None
        for n in range(len(loc), 0, -1):
            if loc[:n] in lines:
                line = lines[loc[:n]]
                break
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        raise PolicyError(msg, file=file, line=line, field=".".join(loc) or None) from None
    policy._file = file
    policy._lines = lines
    return policy


def load_policy(path: str | Path) -> Policy:
    """Read and validate the policy at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError("policy file not found", file=str(p)) from None
    except UnicodeDecodeError:
        raise PolicyError("policy file is not UTF-8 text", file=str(p)) from None
    return parse_policy(text, file=str(p))


def discover_policies(folder: str | Path) -> list[Path]:
    """Every ``*.yaml`` / ``*.yml`` policy file in ``folder``, sorted."""
    d = Path(folder)
    return sorted([*d.glob("*.yaml"), *d.glob("*.yml")])


@dataclass(frozen=True)
class PolicyFolder:
    """The policy files of one folder: those that can be used, by file, and an error for
    each of the others."""

    policies: dict[Path, Policy] = field(default_factory=dict)
    errors: tuple[PolicyError, ...] = ()


def load_policy_folder(folder: str | Path) -> PolicyFolder:
    """Load every policy of ``folder``. A file that does not load is an error of its own; two
    files with the same dataset are both left out (neither silently replaces the other),
    with an error naming both."""
    loaded: dict[Path, Policy] = {}
    errors: list[PolicyError] = []
    for path in discover_policies(folder):
        try:
            loaded[path] = load_policy(path)
        except PolicyError as exc:
            errors.append(exc)
    by_dataset: dict[str, list[Path]] = {}
    for path, policy in loaded.items():
        by_dataset.setdefault(policy.dataset, []).append(path)
    for dataset, paths in by_dataset.items():
        if len(paths) < 2:
            continue
        places = {path: f"{path}:{loaded[path].line_of('dataset')}" for path in paths}
        for path in paths:
            others = " and ".join(places[p] for p in paths if p != path)
            errors.append(
                PolicyError(
                    f"dataset {dataset!r} is also the dataset of {others}; a dataset has one "
                    "policy, so none of them is used until the others name another dataset "
                    "or are removed",
                    file=str(path),
                    line=loaded[path].line_of("dataset"),
                    field="dataset",
                )
            )
            del loaded[path]
    return PolicyFolder(policies=loaded, errors=tuple(errors))
