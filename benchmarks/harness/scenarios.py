"""What is measured: the scenarios and their targets (ratios to nginx in the same run).

Targets come from the performance issue, plus the gateway issue's HS256 row. The proxies run
with the defaults a user gets: propylon's authenticated route is always configured (its
``Bearer`` key comes from the environment), ``/stats`` recording is always on, and nothing is
switched off for a number.
"""

from __future__ import annotations

from dataclasses import dataclass

PROFILE_PATH = "/profiles/12345"
SECURE_PATH = "/secure/profiles/12345"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    path: str
    algorithm: str = "HS256"
    """Which ``Bearer`` key propylon gets: every scenario needs one, because the route table
    has an authenticated route (scenarios without tokens use HS256, the simplest setup)."""
    bearer: bool = False
    """Requests carry a token; with ``rotate`` a different one each, else always the same."""
    rotate: bool = False
    upload: bool = False
    """Timed sequential uploads instead of wrk (see harness/upload_client.py)."""
    workers: int = 1
    pinned: bool = True
    """The proxy on its own CPU; unpinned it may use any (load generator and U stay pinned)."""
    min_ratio: float | None = None
    max_p99_ratio: float | None = None
    max_rss_mib: float | None = None
    min_scaling: float | None = None
    """Propylon with N workers over propylon with one, pinned, from the ``proxy`` scenario."""
    scaling_min_cpus: int = 4
    """Scaling is only judged where N workers, wrk and U each can have a core."""
    tls: bool = False
    """The load goes to the proxy's TLS listener (harness/tls.py); wrk keeps connections."""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "proxy",
        "proxy only, ~200 B JSON, keep-alive",
        PROFILE_PATH,
        min_ratio=0.60,
        max_p99_ratio=2.0,
    ),
    Scenario(
        "jwt-rs256",
        "+ JWT RS256 (cached), User header, /stats",
        SECURE_PATH,
        algorithm="RS256",
        bearer=True,
        min_ratio=0.50,
        max_p99_ratio=2.5,
    ),
    Scenario(
        "jwt-hs256",
        "+ JWT HS256 (cached), User header, /stats",
        SECURE_PATH,
        algorithm="HS256",
        bearer=True,
        min_ratio=0.35,
    ),
    Scenario(
        "jwt-rs256-rotate",
        "+ JWT RS256, distinct tokens (cache misses)",
        SECURE_PATH,
        algorithm="RS256",
        bearer=True,
        rotate=True,
    ),
    Scenario(
        "jwt-hs256-rotate",
        "+ JWT HS256, distinct tokens (cache misses)",
        SECURE_PATH,
        algorithm="HS256",
        bearer=True,
        rotate=True,
        min_ratio=0.25,
    ),
    Scenario(
        "tls",
        "proxy only over TLS (keep-alive, TLS 1.3), ~200 B JSON",
        PROFILE_PATH,
        tls=True,
    ),
    Scenario("big", "64 KiB response body", "/big", min_ratio=0.50),
    Scenario(
        "upload",
        "upload streamed to U (uploads/s; p99 = ms per upload)",
        "/upload",
        upload=True,
        min_ratio=0.50,
        max_rss_mib=64.0,
    ),
    Scenario(
        "workers2",
        "--workers 2, proxy unpinned, ~200 B JSON",
        PROFILE_PATH,
        workers=2,
        pinned=False,
        min_scaling=1.5,
    ),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
SOAK = "soak"
"""Not a Scenario: one proxy, 500 connections for minutes, RSS over time (harness/soak.py)."""


def select(names: str) -> list[Scenario]:
    """Scenarios by comma-separated name, in the catalogue's order; ValueError if unknown."""
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in BY_NAME and name != SOAK]
    if unknown:
        known = ", ".join([*BY_NAME, SOAK])
        raise ValueError(f"unknown scenario {', '.join(unknown)} (known: {known})")
    return [scenario for scenario in SCENARIOS if scenario.name in wanted]
