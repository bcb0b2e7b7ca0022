"""The Airflow plugin: the UI app mounted under /veilflow with one nav entry per page, the
admin rule per auth manager user type, and links from veilflow runs to DAG runs."""

from __future__ import annotations

import pytest

pytest.importorskip("airflow")


def test_plugin_registers_the_app_and_five_nav_entries() -> None:
    from fastapi import FastAPI

    from veilflow.airflow.plugin import VeilflowPlugin

    assert VeilflowPlugin.name == "veilflow"
    (app,) = VeilflowPlugin.fastapi_apps
    assert app["url_prefix"] == "/veilflow" and callable(app["app"])
    built = app["app"].app  # built on first use, once
    assert isinstance(built, FastAPI) and app["app"].app is built
    paths = {getattr(r, "path", None) for r in built.routes}
    views = VeilflowPlugin.external_views
    assert [v["name"] for v in views] == ["Lineage", "Runs", "Access", "Keys", "Audit"]
    for v in views:
        assert not v["href"].startswith("/")  # relative to the Airflow UI's base
        assert v["href"].removeprefix("veilflow") in paths
        assert v["destination"] == "nav" and v["url_route"].startswith("veilflow-")


def test_admin_means_the_auth_managers_admin_role() -> None:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from veilflow.airflow.ui_auth import is_airflow_admin

    def user(role: str | None) -> SimpleAuthManagerUser:
        return SimpleAuthManagerUser(username="u", role=role)

    assert is_airflow_admin(user("ADMIN")) and is_airflow_admin(user("admin"))
    assert not any(is_airflow_admin(user(r)) for r in ("OP", "USER", "VIEWER", None))

    class Role:
        def __init__(self, name: str) -> None:
            self.name = name

    class FabUser:
        def __init__(self, *names: str) -> None:
            self.roles = [Role(n) for n in names]

    assert is_airflow_admin(FabUser("Viewer", "Admin"))
    assert not is_airflow_admin(FabUser("Op")) and not is_airflow_admin(object())


def test_dag_run_links() -> None:
    from veilflow.airflow.plugin import dag_run_path

    assert (
        dag_run_path("customers", "customers:manual__2026-11-27T06:00:00+00:00")
        == "/dags/veilflow_customers/runs/manual__2026-11-27T06%3A00%3A00%2B00%3A00"
    )
    assert dag_run_path("customers", "manual__2026-11-27T06:00:00.1Z") is None


def test_links_follow_airflows_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from veilflow.airflow.plugin import airflow_root

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example/team-a/")
    assert airflow_root() == "/team-a"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://localhost:8080")
    assert airflow_root() == ""


def test_importing_the_plugin_does_not_build_the_ui() -> None:
    import subprocess
    import sys

    code = (
        "import sys, veilflow.airflow.plugin as p; "
        "print(sorted(m for m in ('fastapi', 'veilflow.ui.app', 'veilflow.ui.auth') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
