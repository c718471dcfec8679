"""The public surface of beamlet.apps.pool."""

from __future__ import annotations

import inspect

import beamlet.apps.pool as pool
from export_checks import check_documented, check_homes, check_public_names

PUBLIC = {
    "JobFailure",
    "JobQueueFullError",
    "Jobs",
    "JobsRef",
    "Pool",
    "PoolFullError",
    "PoolRef",
    "PoolStatus",
    "PoolTimeoutError",
    "QueueStats",
    "Strategy",
    "UnknownJobsError",
    "UnknownPoolError",
    "UnknownQueueError",
    "UnpicklableError",
    "checkout",
    "enqueue",
    "run_cpu",
    "status",
    "transaction",
}


def test_public_names() -> None:
    check_public_names(pool, PUBLIC)


def test_public_classes_and_functions_say_where_they_are_exported() -> None:
    check_homes(pool, PUBLIC)


def test_every_public_name_and_method_is_documented() -> None:
    check_documented(pool, PUBLIC)


def test_binding_signatures() -> None:
    start = inspect.signature(pool.Pool.start_link).parameters
    assert list(start)[:1] == ["name"]
    for option in ("worker", "worker_args", "size", "max_overflow", "strategy"):
        assert start[option].kind is inspect.Parameter.KEYWORD_ONLY, option
    assert start["strategy"].default == "lifo"
    assert list(inspect.signature(pool.checkout).parameters) == ["pool", "timeout", "block"]
    assert inspect.signature(pool.checkout).parameters["timeout"].default == 5.0
    assert list(inspect.signature(pool.run_cpu).parameters)[:2] == ["fn", "args"]
    enqueue = inspect.signature(pool.enqueue).parameters
    assert list(enqueue)[:4] == ["jobs", "queue", "fn", "args"]
    assert enqueue["max_attempts"].kind is inspect.Parameter.KEYWORD_ONLY
    assert enqueue["backoff"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.signature(pool.Jobs.start_link).parameters["queues"].kind is (
        inspect.Parameter.KEYWORD_ONLY
    )
