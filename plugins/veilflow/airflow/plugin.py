"""The Airflow plugin, registered through the ``airflow.plugins`` entry point: veilflow's
governance UI (``veilflow.ui``) as a FastAPI app under ``/veilflow`` in Airflow's API server,
with one navigation entry per page (Lineage, Runs, Access, Keys, Audit) under "Veilflow".

The app is given Airflow's auth manager to check every request (``ui_auth``) and Airflow's
naming to link runs to their DAG runs. Building it touches no database.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from veilflow.airflow.ui_auth import resolve_airflow_user

URL_PREFIX = "/veilflow"
PAGES = (("Lineage", "lineage"), ("Runs", "runs"), ("Access", "access"), ("Keys", "keys"),
         ("Audit", "audit"))


def dag_run_path(dataset: str, run_id: str) -> str | None:
    """Airflow UI path of the DAG run behind a veilflow run id ``<dataset>:<airflow run id>``
    (see ``veilflow.airflow.operators.veilflow_run_id``)."""
    from urllib.parse import quote

    from veilflow.airflow.dag_factory import dag_id_for

    prefix = f"{dataset}:"
    if not run_id.startswith(prefix):
        return None
    airflow_run = run_id[len(prefix):]
    return f"/dags/{quote(dag_id_for(dataset))}/runs/{quote(airflow_run, safe='')}"


def airflow_root() -> str:
    """The Airflow UI's path prefix (``[api] base_url``'s path; empty at the root)."""
    from urllib.parse import urlparse

    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    return urlparse(base).path.rstrip("/")


def build_app() -> Any:
    from veilflow.ui.app import create_app

    return create_app(resolve_airflow_user, run_link=dag_run_path, airflow_root=airflow_root())


class VeilflowPlugin(AirflowPlugin):
    name = "veilflow"
    fastapi_apps = [{"app": build_app(), "url_prefix": URL_PREFIX,
                     "name": "veilflow governance"}]
    external_views = [
        {"name": label, "href": f"{URL_PREFIX.lstrip('/')}/{slug}", "url_route": f"veilflow-{slug}",
         "destination": "nav", "category": "Veilflow"}
        for label, slug in PAGES
    ]
