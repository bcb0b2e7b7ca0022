"""`veilflow serve`'s workers each listen on a socket of their own on the same port, and the
kernel spreads connections over them; a port another program holds fails at once."""

from __future__ import annotations

import selectors
import socket

import pytest

from veilflow.errors import VeilflowError
from veilflow.serve.workers import reuse_port_available, reuse_port_socket

pytestmark = pytest.mark.skipif(not reuse_port_available(), reason="no SO_REUSEPORT here")


def test_connections_spread_over_the_workers_sockets() -> None:
    first = reuse_port_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = reuse_port_socket("127.0.0.1", port)
    listeners = [first, second]
    for s in listeners:
        s.listen(64)
        s.setblocking(False)
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    accepted = {0: 0, 1: 0}
    with selectors.DefaultSelector() as sel:
        for k, s in enumerate(listeners):
            sel.register(s, selectors.EVENT_READ, k)
        while sum(accepted.values()) < len(clients):
            events = sel.select(timeout=5)
            assert events, "a connection was not accepted"
            for key, _ in events:
                conn, _addr = key.fileobj.accept()  # type: ignore[union-attr]
                conn.close()
                accepted[key.data] += 1
    for c in clients + listeners:
        c.close()
    # One shared socket would give one worker all 40; by the kernel's hash each gets some
    # (all 40 on one side by chance: 2 in 2**40).
    assert min(accepted.values()) > 0, accepted


def test_a_port_another_program_holds_fails_at_once() -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    try:
        with pytest.raises(VeilflowError, match=r"cannot listen on 127\.0\.0\.1"):
            reuse_port_socket("127.0.0.1", held.getsockname()[1])
    finally:
        held.close()
