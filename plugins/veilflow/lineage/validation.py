"""Check events against the official OpenLineage JSON schemas and veilflow's facet schema,
offline: every ``$id`` is mapped to a local file through a ``referencing`` registry, so no
``$ref`` is ever fetched over the network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from veilflow.lineage.facets import FACET_SCHEMA_FILE

CORE_SCHEMA = "OpenLineage.json"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@lru_cache(maxsize=4)
def schema_registry(spec_dir: Path) -> Registry[Any]:
    """Every schema in ``spec_dir`` (``OpenLineage.json`` + ``facets/*.json``) and veilflow's
    facet schema, under their ``$id``."""
    paths = [
        spec_dir / CORE_SCHEMA,
        *sorted((spec_dir / "facets").glob("*.json")),
        FACET_SCHEMA_FILE,
    ]
    resources = []
    for path in paths:
        schema = _load(path)
        resources.append(
            (schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012))
        )
    return Registry().with_resources(resources)


def _validator(ref: str, spec_dir: Path) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": ref},
        registry=schema_registry(spec_dir),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _facet_refs(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, schemaURL, facet) for every facet in the event."""

    def facets_of(
        where: str, facets: dict[str, Any] | None
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for name, facet in (facets or {}).items():
            yield f"{where}.{name}", facet.get("_schemaURL", ""), facet

    yield from facets_of("run.facets", event.get("run", {}).get("facets"))
    yield from facets_of("job.facets", event.get("job", {}).get("facets"))
    for kind, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for i, ds in enumerate(event.get(kind) or []):
            yield from facets_of(f"{kind}[{i}].facets", ds.get("facets"))
            yield from facets_of(f"{kind}[{i}].{extra}", ds.get(extra))


def event_errors(event: dict[str, Any], spec_dir: Path) -> list[str]:
    """Every way ``event`` breaks the RunEvent schema or a facet's own schema (empty: valid).

    The core schema only checks facets against the base facet; each facet is validated
    again against the schema its ``_schemaURL`` names."""
    errors = [
        f"event: {e.message} at {'/'.join(map(str, e.absolute_path))}"
        for e in _validator(
            event.get("schemaURL")
            or "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            spec_dir,
        ).iter_errors(event)
    ]
    registry = schema_registry(spec_dir)
    for where, url, facet in _facet_refs(event):
        base = url.split("#", 1)[0]
        try:
            registry.get_or_retrieve(base)
        except Exception:  # referencing raises several unresolvable kinds
            errors.append(f"{where}: no local schema for {url!r}")
            continue
        errors.extend(
            f"{where}: {e.message} at {'/'.join(map(str, e.absolute_path))}"
            for e in _validator(url, spec_dir).iter_errors(facet)
        )
    return errors
