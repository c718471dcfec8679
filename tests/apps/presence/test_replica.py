"""Heartbeat bookkeeping: incarnations, down and permdown (Phoenix's replica_test)."""

from __future__ import annotations

from beamlet.apps.presence._replica import Replica, detect_downs, put_heartbeat


def test_an_unknown_name_comes_up() -> None:
    replicas: dict[str, Replica] = {}
    outcome = put_heartbeat(replicas, ("new", 7), 10.0)
    assert replicas == {"new": Replica("new", 7, 10.0, "up")}
    assert outcome.current == replicas["new"]
    assert outcome.previous is None
    assert outcome.came_up and not outcome.ignored and outcome.replaced is None
    assert outcome.current.ref == ("new", 7)


def test_the_known_incarnation_is_touched_and_comes_back_up_if_down() -> None:
    for status in ("up", "down"):
        existing = Replica("existing", 3, 1.0, status)  # type: ignore[arg-type]
        replicas = {"existing": existing}
        outcome = put_heartbeat(replicas, ("existing", 3), 5.0)
        assert replicas["existing"] == Replica("existing", 3, 5.0, "up")
        assert outcome.previous == existing
        assert outcome.replaced is None
        assert outcome.came_up == (status == "down")


def test_a_newer_incarnation_replaces_the_old_one() -> None:
    for status in ("up", "down"):
        old = Replica("n", 3, 1.0, status)  # type: ignore[arg-type]
        replicas = {"n": old}
        outcome = put_heartbeat(replicas, ("n", 4), 2.0)
        assert replicas == {"n": Replica("n", 4, 2.0, "up")}
        assert outcome.replaced == old
        assert outcome.came_up


def test_an_older_incarnation_is_ignored_while_the_known_one_is_up() -> None:
    current = Replica("n", 4, 1.0, "up")
    replicas = {"n": current}
    outcome = put_heartbeat(replicas, ("n", 3), 2.0)
    assert outcome.ignored and not outcome.came_up and outcome.replaced is None
    assert replicas == {"n": current}


def test_an_older_incarnation_replaces_a_known_one_that_is_down() -> None:
    down = Replica("n", 4, 1.0, "down")
    replicas = {"n": down}
    outcome = put_heartbeat(replicas, ("n", 3), 50.0)
    assert replicas == {"n": Replica("n", 3, 50.0, "up")}
    assert outcome.replaced == down and outcome.came_up


def test_detect_downs_temporary() -> None:
    replicas: dict[str, Replica] = {}
    put_heartbeat(replicas, ("tempdown", 1), 100.0)
    assert detect_downs(replicas, 105.0, 5.0, 10.0) == []  # exactly down_period: still up
    changes = detect_downs(replicas, 106.0, 5.0, 10.0)
    assert changes == [(Replica("tempdown", 1, 100.0, "up"), "down")]
    assert replicas["tempdown"].status == "down"
    assert detect_downs(replicas, 107.0, 5.0, 10.0) == []  # reported once


def test_detect_downs_permanent_removes_the_record() -> None:
    replicas: dict[str, Replica] = {}
    put_heartbeat(replicas, ("gone", 1), 100.0)
    changes = detect_downs(replicas, 111.0, 5.0, 10.0)
    assert changes == [(Replica("gone", 1, 100.0, "up"), "permdown")]
    assert replicas == {}


def test_detect_downs_leaves_live_replicas_alone() -> None:
    replicas: dict[str, Replica] = {}
    put_heartbeat(replicas, ("up", 1), 100.0)
    assert detect_downs(replicas, 100.0, 5.0, 10.0) == []
    assert replicas["up"].status == "up"
