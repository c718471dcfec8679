"""Two sans-IO distribution connections joined in memory, for the protocol tests.

``tests/conftest.py`` puts this folder on ``sys.path``, so tests import it as
``from handshake import ...``.
"""

from __future__ import annotations

from typing import Any

from beamlet.cluster._auth import Role
from beamlet.cluster._connection import NEED_DATA, Connection, State


def connected_pair(cookie: bytes, **options: Any) -> tuple[Connection, Connection]:
    """An initiator ``a@127.0.0.1`` (creation 1) and an acceptor ``b@127.0.0.1``
    (creation 2), both with ``cookie`` and ``options``, after the whole handshake:
    both are ``CONNECTED``, with nothing left to send."""
    a = Connection(Role.INITIATOR, node_name="a@127.0.0.1", creation=1, cookie=cookie, **options)
    b = Connection(Role.ACCEPTOR, node_name="b@127.0.0.1", creation=2, cookie=cookie, **options)
    pending = [(b, a.initiate())]
    while pending:
        conn, data = pending.pop()
        conn.receive_data(data)
        while conn.next_event() is not NEED_DATA and conn.state is not State.CONNECTED:
            pass
        answer = conn.data_to_send()
        if answer:
            pending.append((a if conn is b else b, answer))
    assert a.state is b.state is State.CONNECTED
    return a, b
