"""Names in OpenLineage terms: datasets, jobs and run ids.

Datasets follow OpenLineage's naming spec for PostgreSQL: namespace ``postgres://host:port``,
name ``database.schema.table``. The embedded server listens on a Unix socket only and has no
host name; its datasets use ``postgres://localhost:<port>``, which stays the same for every
process on the machine (CLI, Airflow tasks, tests). ``VEILFLOW_LINEAGE_PG_NAMESPACE`` overrides
the namespace when workers reach one server under different host names.

Jobs live in the namespace ``veilflow`` (``VEILFLOW_LINEAGE_NAMESPACE``): one job per stage,
``<dataset>.<stage>``. Run ids are UUIDs, derived from the veilflow run id and the stage, so the
START and COMPLETE events of one stage share one run.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Protocol

#: Fixed UUID namespace for veilflow's derived run ids (uuid5).
RUN_UUID_NAMESPACE = uuid.UUID("0b6f2d8e-5a5c-4f6e-9b7a-3c1d2e4f5a60")
DEFAULT_JOB_NAMESPACE = "veilflow"
EMBEDDED_HOST = "localhost"
DEFAULT_PORT = 5432


class ConnInfo(Protocol):
    """The part of ``psycopg.Connection.info`` naming needs."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def dbname(self) -> str: ...


@dataclass(frozen=True)
class DatasetRef:
    """One dataset: ``namespace`` and ``name`` as OpenLineage spells them."""

    namespace: str
    name: str

    @property
    def table(self) -> str:
        """``schema.table``: the name without the database."""
        return self.name.split(".", 1)[1] if self.name.count(".") >= 2 else self.name

    @property
    def uri(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Naming:
    """Where this run's tables live: the server namespace and the database name."""

    namespace: str
    database: str

    def dataset(self, table: str) -> DatasetRef:
        """``schema.table`` → a dataset of this database."""
        return DatasetRef(self.namespace, f"{self.database}.{table}")


def pg_namespace(host: str | None, port: int | None) -> str:
    """``postgres://host:port``; a Unix socket (a path, or no host) counts as localhost."""
    override = os.environ.get("VEILFLOW_LINEAGE_PG_NAMESPACE")
    if override:
        return override.rstrip("/")
    if not host or host.startswith(("/", "@")):
        host = EMBEDDED_HOST
    return f"postgres://{host.lower()}:{port or DEFAULT_PORT}"


def naming_of(info: ConnInfo) -> Naming:
    """The naming for the database a connection is attached to."""
    return Naming(pg_namespace(info.host, info.port), info.dbname)


def job_namespace() -> str:
    return os.environ.get("VEILFLOW_LINEAGE_NAMESPACE") or DEFAULT_JOB_NAMESPACE


def as_run_uuid(run_id: str, *parts: str) -> str:
    """A UUID for ``run_id`` (+ parts): itself when it already is one and there are no parts,
    else a stable uuid5, so the same inputs always name the same OpenLineage run."""
    if not parts:
        try:
            return str(uuid.UUID(run_id))
        except ValueError:
            pass
    return str(uuid.uuid5(RUN_UUID_NAMESPACE, "/".join((run_id, *parts))))


def stage_job_name(dataset: str, stage: str) -> str:
    return f"{dataset}.{stage}"
