"""The Airflow plugin, registered through the ``airflow.plugins`` entry point: veilflow's
governance UI (``veilflow.ui``) as a FastAPI app under ``/veilflow`` in Airflow's API server,
with one navigation entry per page (Lineage, Runs, Access, Keys, Audit) under "Veilflow".

The app is given Airflow's auth manager to check every request (``ui_auth``) and Airflow's
naming to link runs to their DAG runs. It is built on its first request: Airflow imports
plugins in every task process too, and those never serve a page, so they should not pay for
importing FastAPI and the UI. Building it touches no database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/veilflow"
PAGES = (
    ("Lineage", "lineage"),
    ("Runs", "runs"),
    ("Access", "access"),
    ("Keys", "keys"),
    ("Audit", "audit"),
)


def dag_run_path(dataset: str, run_id: str) -> str | None:
    """Airflow UI path of the DAG run behind a veilflow run id ``<dataset>:<airflow run id>``
    (see ``veilflow.airflow.operators.veilflow_run_id``)."""
    from urllib.parse import quote

    from veilflow.airflow.dag_factory import dag_id_for

    prefix = f"{dataset}:"
    if not run_id.startswith(prefix):
        return None
    airflow_run = run_id[len(prefix) :]
    return f"/dags/{quote(dag_id_for(dataset))}/runs/{quote(airflow_run, safe='')}"


def airflow_root() -> str:
    """The Airflow UI's path prefix (``[api] base_url``'s path; empty at the root)."""
    from urllib.parse import urlparse

    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    return urlparse(base).path.rstrip("/")


def build_app() -> Any:
    """The UI app wired to Airflow."""
    from veilflow.airflow.ui_auth import resolve_airflow_user
    from veilflow.ui.app import create_app

    return create_app(resolve_airflow_user, run_link=dag_run_path, airflow_root=airflow_root())


class LazyApp:
    """An ASGI app that builds the real one on its first request."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def __repr__(self) -> str:
        return "veilflow.ui.app:create_app (built on first request)"


class VeilflowPlugin(AirflowPlugin):
    name = "veilflow"
    fastapi_apps = [
        {"app": LazyApp(build_app), "url_prefix": URL_PREFIX, "name": "veilflow governance"}
    ]
    external_views = [
        {
            "name": label,
            "href": f"{URL_PREFIX.lstrip('/')}/{slug}",
            "url_route": f"veilflow-{slug}",
            "destination": "nav",
            "category": "Veilflow",
        }
        for label, slug in PAGES
    ]
