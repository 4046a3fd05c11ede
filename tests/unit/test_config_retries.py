"""The native ``retries`` block (per route and top level) and the pool keys of ``limits``:
values, inheritance, and every mistake named by its key path."""

from __future__ import annotations

from pathlib import Path

from propylon.config.model import NO_RETRIES, RETRY_METHODS, Limits, RetrySpec
from tests.unit.test_config_native import load, problems
from tests.unit.test_config_ocelot import load as load_ocelot

ROUTE = "\n  - path: {path}\n    downstream: {{hosts: [a:1]}}\n"


def _file(top: str = "", *routes: str) -> str:
    text = "propylon: 1\n" + top + "routes:"
    for i, extra in enumerate(routes or ("",)):
        text += ROUTE.format(path=f"/r{i}") + extra
    return text


def test_every_route_has_the_safe_default(tmp_path: Path) -> None:
    spec = load(tmp_path, _file()).routes[0]
    assert spec.retries == RetrySpec()
    assert spec.retries.attempts == 2 and spec.retries.methods == frozenset()


def test_a_route_block_is_read_whole(tmp_path: Path) -> None:
    text = _file(
        "",
        "    timeout: 10\n"
        "    retries: {attempts: 3, methods: [get, PUT], per_try_timeout: 2s, backoff: 10ms,\n"
        "              backoff_max: 1s, replay_body_bytes: 1000,\n"
        "              budget: {ratio: 0.5, min_per_second: 1}}\n",
    )
    assert load(tmp_path, text).routes[0].retries == RetrySpec(
        attempts=3,
        methods=frozenset({"GET", "PUT"}),
        per_try_timeout=2.0,
        backoff=0.01,
        backoff_max=1.0,
        replay_body_bytes=1000,
        budget_ratio=0.5,
        budget_floor=1.0,
    )
    # A block without methods retries the idempotent ones after any failure.
    plain = load(tmp_path, _file("", "    retries: {attempts: 2}\n")).routes[0].retries
    assert plain.methods == RETRY_METHODS


def test_the_top_level_block_is_every_routes_default_and_false_turns_retries_off(
    tmp_path: Path,
) -> None:
    text = _file(
        "retries: {attempts: 4}\n",
        "",
        "    retries: false\n",
        "    retries: {attempts: 2}\n",
    )
    routes = load(tmp_path, text).routes
    assert routes[0].retries.attempts == 4 and routes[0].retries.methods == RETRY_METHODS
    assert routes[1].retries == NO_RETRIES
    # A route's own block is all of its policy: not merged with the top level's.
    assert routes[2].retries == RetrySpec(attempts=2, methods=RETRY_METHODS)


def test_retry_mistakes_name_their_key_paths(tmp_path: Path) -> None:
    text = _file(
        "retries: {attempts: 0, budget: {ratio: 2, min_per_second: many, burst: 1}}\n",
        "    retries: {methods: [GET, 7, FOO, TRACE], per_try_timeout: 0, backoff: 1s,\n"
        "              backoff_max: 10ms, replay_body_bytes: -1, tries: 2}\n",
        "    retries: [GET]\n",
    )
    assert problems(tmp_path, text) == [
        "retries.budget.burst: error: unknown key; expected one of ratio, min_per_second",
        "retries.budget.ratio: error: must be in [0, 1], got 2",
        "retries.budget.min_per_second: error: must be a number of retries per second, "
        "got a string",
        "retries.attempts: error: must be at least 1, got 0",
        "routes[0].retries.tries: error: unknown key; expected one of attempts, methods, "
        "per_try_timeout, backoff, backoff_max, replay_body_bytes, budget",
        "routes[0].retries.methods[1]: error: must be a method name, got a number",
        "routes[0].retries.methods[2]: error: unknown HTTP method 'FOO'; use one of DELETE, "
        "GET, HEAD, OPTIONS, PATCH, POST, PUT",
        "routes[0].retries.methods[3]: error: method TRACE is not proxied by propylon",
        "routes[0].retries.per_try_timeout: error: must be more than 0, got 0",
        "routes[0].retries.backoff_max: error: must not be below backoff (1s)",
        "routes[0].retries.replay_body_bytes: error: must be at least 0, got -1",
        "routes[1].retries: error: must be an object, got a list",
    ]


def test_retrying_a_method_that_is_not_idempotent_is_allowed_with_a_warning(
    tmp_path: Path,
) -> None:
    text = _file("", "    timeout: 1\n    retries: {methods: [POST], per_try_timeout: 5s}\n")
    config = load(tmp_path, text)
    assert config.routes[0].retries.methods == frozenset({"POST"})
    assert [f"{w.path}: {w.message}" for w in config.warnings] == [
        "routes[0].retries.methods[0]: POST is not idempotent: a retry after a failure the "
        "upstream may have seen can apply it twice",
        "routes[0].retries.per_try_timeout: has no effect: the route's timeout (1s) ends "
        "every try first",
    ]


def test_pool_limits_are_read_and_checked(tmp_path: Path) -> None:
    text = _file(
        "limits: {upstream_max_connections: 8, upstream_queue: 0, upstream_queue_timeout: 0.5,"
        " upstream_idle_timeout: 4}\n"
    )
    limits = load(tmp_path, text).limits
    assert (
        limits.upstream_max_connections,
        limits.upstream_queue,
        limits.upstream_queue_timeout,
        limits.upstream_idle_timeout,
    ) == (8, 0, 0.5, 4.0)
    assert Limits().upstream_max_connections == 1024 and Limits().upstream_idle_timeout == 30
    bad = _file(
        "limits: {upstream_max_connections: -1, upstream_queue: x, upstream_queue_timeout: 0,"
        " upstream_idle_timeout: -2}\n"
    )
    found = problems(tmp_path, bad)
    assert [line.split(":")[0] for line in found] == [
        "limits.upstream_idle_timeout",
        "limits.upstream_max_connections",
        "limits.upstream_queue",
        "limits.upstream_queue_timeout",
    ]


def test_ocelot_routes_get_the_safe_default(tmp_path: Path) -> None:
    route = {
        "UpstreamPathTemplate": "/a",
        "DownstreamPathTemplate": "/a",
        "DownstreamHostAndPorts": [{"Host": "a", "Port": 1}],
    }
    config = load_ocelot(tmp_path, {"Routes": [route]})
    # Ocelot 25 has no retry keys: its routes retry only what never reached the upstream
    # (and the stale keep-alive race), as every native route does by default.
    assert config.routes[0].retries == RetrySpec()
