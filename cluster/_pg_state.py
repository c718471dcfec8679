"""The pure state of one process-group scope on one node.

Local members are kept with their multiplicity (a process may join a group
several times and must leave as many times). Remote members are kept per
node, as the peers last reported them. Every change returns what it changed,
so the scope process can tell the peers and the group monitors.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from beamlet.actors import Pid

__all__ = ["Change", "GroupsState"]

#: ``(kind, group, pids)`` with kind ``"join"`` or ``"leave"``.
Change = tuple[str, Any, list[Pid]]


class GroupsState:
    """Members of every group of one scope, as seen from one node."""

    def __init__(self) -> None:
        self.local: dict[Hashable, list[Pid]] = {}
        self.remote: dict[str, dict[Hashable, list[Pid]]] = {}  # node -> group -> pids

    # -- reads -----------------------------------------------------------------------

    def members(self, group: Hashable) -> list[Pid]:
        pids = list(self.local.get(group, ()))
        for groups in self.remote.values():
            pids.extend(groups.get(group, ()))
        return pids

    def local_members(self, group: Hashable) -> list[Pid]:
        return list(self.local.get(group, ()))

    def groups(self) -> list[Hashable]:
        names: dict[Hashable, None] = dict.fromkeys(self.local)
        for groups in self.remote.values():
            names.update(dict.fromkeys(groups))
        return list(names)

    def memberships(self, pid: Pid) -> list[Hashable]:
        """The groups ``pid`` (local) belongs to, once per membership."""
        return [group for group, pids in self.local.items() for p in pids if p == pid]

    def local_snapshot(self) -> dict[Hashable, list[Pid]]:
        return {group: list(pids) for group, pids in self.local.items()}

    # -- local changes -------------------------------------------------------------

    def join(self, group: Hashable, pids: Iterable[Pid]) -> Change:
        added = list(pids)
        self.local.setdefault(group, []).extend(added)
        return ("join", group, added)

    def leave(self, group: Hashable, pids: Iterable[Pid]) -> Change | None:
        """Remove one membership of each pid; None if none of them was a member."""
        current = self.local.get(group)
        if not current:
            return None
        removed = []
        for pid in pids:
            if pid in current:
                current.remove(pid)
                removed.append(pid)
        if not current:
            del self.local[group]
        return ("leave", group, removed) if removed else None

    def drop_local(self, pid: Pid) -> list[Change]:
        """Remove every membership of a local process that exited."""
        changes = []
        for group in list(self.local):
            pids = self.local[group]
            gone = [p for p in pids if p == pid]
            if gone:
                pids[:] = [p for p in pids if p != pid]
                if not pids:
                    del self.local[group]
                changes.append(("leave", group, gone))
        return changes

    # -- remote changes ------------------------------------------------------------

    def remote_join(self, node: str, group: Hashable, pids: list[Pid]) -> Change:
        self.remote.setdefault(node, {}).setdefault(group, []).extend(pids)
        return ("join", group, list(pids))

    def remote_leave(self, node: str, group: Hashable, pids: list[Pid]) -> Change | None:
        groups = self.remote.get(node)
        current = groups.get(group) if groups else None
        if not current or groups is None:
            return None
        removed = []
        for pid in pids:
            if pid in current:
                current.remove(pid)
                removed.append(pid)
        if not current:
            del groups[group]
        return ("leave", group, removed) if removed else None

    def sync(self, node: str, groups: dict[Hashable, list[Pid]]) -> list[Change]:
        """Replace what ``node`` has with its full report; return the differences."""
        old = self.remote.get(node, {})
        changes: list[Change] = []
        for group in set(old) | set(groups):
            before = list(old.get(group, ()))
            after = list(groups.get(group, ()))
            left = list(before)
            joined = []
            for pid in after:
                if pid in left:
                    left.remove(pid)
                else:
                    joined.append(pid)
            if left:
                changes.append(("leave", group, left))
            if joined:
                changes.append(("join", group, joined))
        self.remote[node] = {group: list(pids) for group, pids in groups.items() if pids}
        return changes

    def drop_node(self, node: str) -> list[Change]:
        """Forget every member of ``node`` (it went down)."""
        groups = self.remote.pop(node, {})
        return [("leave", group, list(pids)) for group, pids in groups.items() if pids]
