"""beamlet.cluster: distribution between nodes.

Nodes named ``"name@host"`` connect over authenticated connections (TCP, TLS
or in-memory), form a full mesh, and carry messages, links, monitors and exit
signals between processes as if they were local. Also here: the codec, the
sans-IO wire protocol, rpc to exported functions, process groups
(``beamlet.cluster.pg``) and a deterministic cluster simulation
(``beamlet.cluster.simulation``).
"""

from beamlet.actors.lowlevel import fixup_module_metadata as _fixup

from . import _wire as _wire  # registers the runtime's message classes with the codec
from ._api import (
    NotDistributedError as NotDistributedError,
    connect as connect,
    default_node_name as default_node_name,
    disconnect as disconnect,
    distribution as distribution,
    listen_address as listen_address,
    monitor_node as monitor_node,
    monitor_nodes as monitor_nodes,
    node_name as node_name,
    nodes as nodes,
    open_node as open_node,
    run as run,
    start_distribution as start_distribution,
)
from ._codec import Codec as Codec, decode as decode, encode as encode
from ._connection import Connection as Connection
from ._cookie import (
    Cookie as Cookie,
    CookieError as CookieError,
    default_cookie_path as default_cookie_path,
)
from ._discovery import DNSPoll as DNSPoll
from ._distribution import (
    Distribution as Distribution,
    DistributionBusyError as DistributionBusyError,
)
from ._errors import (
    ConnectError as ConnectError,
    DecodeError as DecodeError,
    InsecureListenError as InsecureListenError,
    LocalProtocolError as LocalProtocolError,
    ProtocolError as ProtocolError,
    RemoteProtocolError as RemoteProtocolError,
)
from ._events import validate_node_name as validate_node_name
from ._messages import RUNTIME_SIGNALS as RUNTIME_SIGNALS, NodeDown as NodeDown, NodeUp as NodeUp
from ._registry import (
    MessageRegistry as MessageRegistry,
    RemoteError as RemoteError,
    message as message,
)
from ._rpc import (
    ExportedFunction as ExportedFunction,
    RpcError as RpcError,
    export as export,
    rpc as rpc,
    spawn_on as spawn_on,
)
from ._transport import (
    MemoryNetwork as MemoryNetwork,
    TCPTransport as TCPTransport,
    TLSConfig as TLSConfig,
    Transport as Transport,
)

_fixup(__name__, globals())
