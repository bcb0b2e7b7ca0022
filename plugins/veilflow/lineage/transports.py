"""Delivery of stored events beyond the governance store, through openlineage-python's own
transports and configuration:

- an ``openlineage.yml`` (``OPENLINEAGE_CONFIG``, the working folder or ``~/.openlineage``)
  or ``OPENLINEAGE__TRANSPORT__*`` variables: whatever transport ``OpenLineageClient``
  resolves from them, with their own retry settings;
- else ``OPENLINEAGE_URL`` (+ ``OPENLINEAGE_ENDPOINT``, ``OPENLINEAGE_API_KEY``): the HTTP
  transport (Marquez), retrying a connection ``VEILFLOW_LINEAGE_HTTP_RETRIES`` times (default
  1; the client's own default of 5 with backoff holds a task ~9 s per event when Marquez is
  down, and the governance store already keeps every event for a later retry);
- ``VEILFLOW_LINEAGE_FILE_DIR``: one JSON file per event in that folder (the file transport).

The event delivered is the stored JSON itself, byte for byte. A failing transport is skipped
for ``VEILFLOW_LINEAGE_BACKOFF`` seconds (default 60) in this process, so a Marquez that is
down costs one timeout, not one per event; its events stay pending for ``veilflow lineage
retry``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from openlineage.client.transport import Transport

log = logging.getLogger(__name__)

_CONFIG_ENV = (
    "OPENLINEAGE_URL",
    "OPENLINEAGE_CONFIG",
    "OPENLINEAGE_DISABLED",
    "OPENLINEAGE_ENDPOINT",
    "OPENLINEAGE_API_KEY",
    "VEILFLOW_LINEAGE_FILE_DIR",
    "VEILFLOW_LINEAGE_HTTP_RETRIES",
)
_CREDENTIALS = re.compile(r"//[^/@\s]+@")


@dataclass
class Delivery:
    """One configured transport and, when it failed recently, until when to skip it."""

    name: str
    transport: Transport
    down_until: float = 0.0
    last_error: str | None = field(default=None)


def _openlineage_config_given() -> bool:
    """An openlineage.yml or ``OPENLINEAGE__TRANSPORT…`` variables (the client's full config;
    ``OPENLINEAGE__TRANSPORT__TRANSPORTS__DEFAULT_HTTP…`` is the client's own alias of
    ``OPENLINEAGE_URL`` and does not count)."""
    if any(k.startswith("OPENLINEAGE__TRANSPORT") and "DEFAULT_HTTP" not in k for k in os.environ):
        return True
    candidates = [
        os.environ.get("OPENLINEAGE_CONFIG"),
        str(Path.cwd() / "openlineage.yml"),
        str(Path("~/.openlineage/openlineage.yml").expanduser()),
    ]
    return any(p and Path(p).is_file() for p in candidates)


def http_retries() -> int:
    try:
        return max(0, int(os.environ.get("VEILFLOW_LINEAGE_HTTP_RETRIES", "1")))
    except ValueError:
        return 1


def _url_transport(url: str) -> Transport:
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    n = http_retries()
    params: dict[str, Any] = {
        "url": url,
        "endpoint": os.environ.get("OPENLINEAGE_ENDPOINT", "api/v1/lineage"),
        "timeout": 5.0,
        "retry": {"total": n, "connect": n, "read": n, "backoff_factor": 0.2},
    }
    if os.environ.get("OPENLINEAGE_API_KEY"):
        params["auth"] = {"type": "api_key", "apiKey": os.environ["OPENLINEAGE_API_KEY"]}
    return HttpTransport(HttpConfig.from_dict(params))


def build_deliveries() -> list[Delivery]:
    """The transports configured right now (none: the governance store is the only one)."""
    out: list[Delivery] = []
    disabled = os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true"
    if not disabled and _openlineage_config_given():
        from openlineage.client import OpenLineageClient

        transport = OpenLineageClient().transport
        if transport.kind not in ("noop", "console"):
            out.append(Delivery(f"openlineage:{transport.kind}", transport))
    elif not disabled and os.environ.get("OPENLINEAGE_URL"):
        out.append(Delivery("openlineage:http", _url_transport(os.environ["OPENLINEAGE_URL"])))
    folder = os.environ.get("VEILFLOW_LINEAGE_FILE_DIR")
    if folder:
        from openlineage.client.transport.file import FileConfig, FileTransport

        Path(folder).mkdir(parents=True, exist_ok=True)
        out.append(
            Delivery(
                "file",
                FileTransport(FileConfig(log_file_path=str(Path(folder) / "event"), append=False)),
            )
        )
    return out


_cache: dict[tuple[Any, ...], list[Delivery]] = {}


def deliveries() -> list[Delivery]:
    """The configured transports, built once per configuration (env and config files)."""
    key = (
        tuple(os.environ.get(k) for k in _CONFIG_ENV),
        tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("OPENLINEAGE__"))),
        str(Path.cwd()),
    )
    got = _cache.get(key)
    if got is None:
        _cache.clear()
        got = _cache[key] = build_deliveries()
    return got


def backoff_seconds() -> float:
    try:
        return float(os.environ.get("VEILFLOW_LINEAGE_BACKOFF", "60"))
    except ValueError:
        return 60.0


def describe_error(exc: BaseException) -> str:
    """Why a delivery failed, without credentials that may sit in a URL."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = _CREDENTIALS.sub("//***@", text)
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def deliver(event: dict[str, Any], targets: list[Delivery], *, force: bool = False) -> str | None:
    """Send one event to every target. None when all took it, else the errors joined.
    A target that failed within the backoff window is skipped (and counts as failed) unless
    ``force``."""
    errors = []
    now = time.monotonic()
    for target in targets:
        if not force and target.down_until > now:
            errors.append(f"{target.name}: skipped after a recent failure ({target.last_error})")
            continue
        try:
            target.transport.emit(cast(Any, event))
        except Exception as exc:  # any transport failure is reported, never raised
            reason = describe_error(exc)
            target.down_until = time.monotonic() + backoff_seconds()
            target.last_error = reason
            log.error(
                "lineage delivery to %s failed (%s); the event stays in the governance "
                "store for `veilflow lineage retry`",
                target.name,
                reason,
            )
            errors.append(f"{target.name}: {reason}")
        else:
            target.down_until = 0.0
            target.last_error = None
    return "; ".join(errors) if errors else None
