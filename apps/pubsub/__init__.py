"""beamlet.apps.pubsub: distributed publish/subscribe, as Phoenix.PubSub.

Start a ``PubSub`` on every node; processes ``subscribe`` to topics (str) and
receive every message ``broadcast`` to them, on any node. Local subscribers
get a broadcast from the publisher itself (no server in between, no codec);
each other node gets one message, fanned out there. At most once, in order
per publisher. See docs/pubsub.md.

Adapters carry broadcasts between nodes: ``"cluster"`` (beamlet distribution
and ``pg``, the default) or ``"redis"`` (Redis PUBLISH/SUBSCRIBE, for nodes
that cannot connect to each other; ``pip install 'beamlet[redis]'``); write
another by subclassing ``Adapter``. ``beamlet.apps.pubsub.testing`` holds the
conformance suite every adapter passes.
"""

from beamlet.actors.lowlevel import fixup_module_metadata as _fixup

from ._adapter import (
    ADAPTERS as ADAPTERS,
    Adapter as Adapter,
    AdapterConfig as AdapterConfig,
)
from ._dispatch import (
    DEFAULT_DISPATCHER as DEFAULT_DISPATCHER,
    UnknownDispatcherError as UnknownDispatcherError,
    default_dispatch as default_dispatch,
    dispatcher as dispatcher,
    shard_for as shard_for,
)
from ._pubsub import (
    PubSub as PubSub,
    UnknownPubSubError as UnknownPubSubError,
    broadcast as broadcast,
    broadcast_from as broadcast_from,
    direct_broadcast as direct_broadcast,
    local_broadcast as local_broadcast,
    local_broadcast_from as local_broadcast_from,
    node_name as node_name,
    stats as stats,
    subscribe as subscribe,
    unsubscribe as unsubscribe,
)

__all__ = [
    "ADAPTERS",
    "DEFAULT_DISPATCHER",
    "Adapter",
    "AdapterConfig",
    "PubSub",
    "UnknownDispatcherError",
    "UnknownPubSubError",
    "broadcast",
    "broadcast_from",
    "default_dispatch",
    "direct_broadcast",
    "dispatcher",
    "local_broadcast",
    "local_broadcast_from",
    "node_name",
    "shard_for",
    "stats",
    "subscribe",
    "unsubscribe",
]

_fixup(__name__, globals())
