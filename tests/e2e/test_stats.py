"""The gateway's /stats after real traffic: routes by name or template, never by request path."""

from __future__ import annotations

from typing import Any

from tests.e2e.api import GatewayApi
from tests.e2e.stack import RunningStack

PROFILE_READS = 3


def _route(report: dict[str, Any], name: str) -> dict[str, Any]:
    found = [r for r in report["routes"] if r["route"] == name]
    assert len(found) == 1, ", ".join(r["route"] for r in report["routes"])
    route: dict[str, Any] = found[0]
    return route


async def test_stats_count_the_stack_traffic_by_route(api: GatewayApi, stack: RunningStack) -> None:
    account = await api.sign_up("counted")
    profile = await api.create_profile(account, "Counted")
    before = _route(await api.stats(), "profile")
    for _ in range(PROFILE_READS):
        reply = await api.call("GET", f"/profiles/{profile['id']}", token=account.access_token)
        assert reply.status == 200, reply

    report = await api.stats()

    after = _route(report, "profile")
    assert after["requests"] - before["requests"] == PROFILE_READS
    assert after["responses"]["2xx"] - before["responses"]["2xx"] == PROFILE_READS
    assert after["latency_ms"]["count"] >= PROFILE_READS
    for name in ("create-user", "login", "profiles"):
        assert _route(report, name)["requests"] >= 1, name
    # A route's name never carries a request's identifiers.
    assert all(str(profile["id"]) not in r["route"] for r in report["routes"])
    assert account.username not in str(report)
    assert report["upstreams"][stack.identity_upstream]["requests"] >= 2
    assert report["totals"]["requests"] >= report["totals"]["routed_requests"] > 0
