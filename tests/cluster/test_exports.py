"""The public surface of beamlet.cluster (and of beamlet.cluster.pg)."""

from __future__ import annotations

import inspect

import beamlet.cluster as cluster
import beamlet.cluster.pg as pg
import beamlet.cluster.simulation as simulation
from export_checks import check_documented, check_homes, check_public_names

PUBLIC = {
    "Codec",
    "ConnectError",
    "Connection",
    "Cookie",
    "CookieError",
    "DNSPoll",
    "DecodeError",
    "Distribution",
    "DistributionBusyError",
    "ExportedFunction",
    "InsecureListenError",
    "LocalProtocolError",
    "MemoryNetwork",
    "MessageRegistry",
    "NodeDown",
    "NodeUp",
    "NotDistributedError",
    "ProtocolError",
    "RemoteError",
    "RUNTIME_SIGNALS",
    "RemoteProtocolError",
    "RpcError",
    "TCPTransport",
    "TLSConfig",
    "Transport",
    "connect",
    "decode",
    "default_cookie_path",
    "default_node_name",
    "disconnect",
    "distribution",
    "encode",
    "export",
    "listen_address",
    "message",
    "monitor_node",
    "monitor_nodes",
    "node_name",
    "nodes",
    "open_node",
    "rpc",
    "run",
    "spawn_on",
    "start_distribution",
    "validate_node_name",
}

#: Every name the design binds for beamlet.cluster.
DESIGN_NAMES = [
    "run",
    "open_node",
    "start_distribution",
    "listen_address",
    "node_name",
    "nodes",
    "connect",
    "disconnect",
    "monitor_nodes",
    "monitor_node",
    "NodeUp",
    "NodeDown",
    "rpc",
    "spawn_on",
    "export",
    "message",
    "RemoteError",
]

PG_NAMES = {
    "GroupChange",
    "NotLocalError",
    "ScopeNotStartedError",
    "child_spec",
    "demonitor",
    "groups",
    "join",
    "leave",
    "local_members",
    "members",
    "monitor",
    "start_scope",
}


def test_public_names() -> None:
    check_public_names(cluster, PUBLIC)
    assert set(DESIGN_NAMES) <= PUBLIC


def test_names_say_where_they_are_exported() -> None:
    check_homes(cluster, PUBLIC)


def test_every_public_name_and_method_is_documented() -> None:
    for name in PUBLIC:
        assert inspect.getdoc(getattr(cluster, name)), name
    check_documented(cluster, PUBLIC)
    for name in sorted(PG_NAMES):
        value = getattr(pg, name)
        assert inspect.getdoc(value), f"pg.{name}"
    assert inspect.getdoc(simulation.simulated_cluster)


def test_pg_surface() -> None:
    assert set(pg.__all__) | {"child_spec"} == PG_NAMES
    for name in PG_NAMES:
        assert hasattr(pg, name), name


def test_exception_hierarchy() -> None:
    assert issubclass(cluster.NotDistributedError, RuntimeError)
    assert issubclass(cluster.DistributionBusyError, RuntimeError)
    assert issubclass(cluster.LocalProtocolError, cluster.ProtocolError)
    assert issubclass(cluster.RemoteProtocolError, cluster.ProtocolError)
    assert issubclass(cluster.CookieError, Exception)
    assert issubclass(cluster.InsecureListenError, ValueError)
    assert cluster.InsecureListenError("10.0.0.5").host == "10.0.0.5"
    assert issubclass(pg.NotLocalError, ValueError)
    assert issubclass(pg.ScopeNotStartedError, LookupError)
    assert cluster.RpcError("why").reason == "why"


INTROSPECT_NAMES = {
    "INTROSPECT",
    "MAX_LIMIT",
    "NODE_TABLE_BUDGET",
    "NODE_TABLE_BURST",
    "SORT_KEYS",
    "TABLE_BUDGET",
    "TABLE_BURST",
    "IntrospectError",
    "child_spec",
    "node_info",
    "process_table",
    "remote_process_info",
}


def test_introspect_surface() -> None:
    import beamlet.cluster.introspect as introspect

    assert set(introspect.__all__) == INTROSPECT_NAMES
    for name in INTROSPECT_NAMES:
        value = getattr(introspect, name)
        if callable(value):
            assert inspect.getdoc(value), f"introspect.{name}"
    assert issubclass(introspect.IntrospectError, Exception)
