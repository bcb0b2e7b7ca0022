"""The worker processes of ``veilflow serve``, each listening on a socket of its own.

uvicorn's own workers share one listening socket, and the worker that is awake when clients
connect takes every connection waiting: sixteen keep-alive clients that connect together all
land on one worker, which does all the work on one core while the other sleeps (the
benchmark showed exactly that). Here each worker binds the same port with ``SO_REUSEPORT``,
and the kernel spreads new connections over the workers' sockets by a hash of each
connection's addresses.

The parent binds the port first (without listening, so it takes no connection) to fail at
once when the port is taken, starts the workers, starts a worker again if one dies, and on
SIGINT or SIGTERM asks each to stop (uvicorn's graceful shutdown: the service's lifespan
writes its last counts to the audit log) and waits for them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn

from veilflow.errors import VeilflowError

log = logging.getLogger(__name__)

#: Seconds a stopping worker gets to finish its requests and write its counts.
STOP_SECONDS = 60.0


def reuse_port_available() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` that other such sockets may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise VeilflowError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _serve(config: uvicorn.Config) -> None:  # pragma: no cover - runs in a worker process
    config.configure_logging()
    sock = reuse_port_socket(config.host, config.port)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(config: uvicorn.Config, workers: int) -> None:
    """Serve ``config`` from ``workers`` processes until SIGINT or SIGTERM."""
    probe = reuse_port_socket(config.host, config.port)
    config.port = probe.getsockname()[1]  # port 0: the one the system gave, for every worker
    ctx = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start() -> BaseProcess:
        process = ctx.Process(target=_serve, args=(config,), name="veilflow-serve")
        process.start()
        return process

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    processes: list[BaseProcess] = []
    try:
        processes = [start() for _ in range(workers)]
        while not stop.wait(0.5):
            for i, process in enumerate(processes):
                if not process.is_alive():
                    log.warning(
                        "worker process %s exited with code %s; starting another",
                        process.pid,
                        process.exitcode,
                    )
                    processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.join(STOP_SECONDS)
            if process.is_alive():
                log.error("worker process %s did not stop; killing it", process.pid)
                process.kill()
                process.join()
        probe.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
