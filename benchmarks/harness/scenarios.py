"""What is measured: the scenarios and their targets (ratios to nginx in the same run, or to
propylon's own ``proxy`` scenario in the same run).

Targets come from the performance issue, plus the gateway issue's HS256 row and the operations
issue's (#14) access-log and tracing rows. The proxies run with the defaults a user gets:
propylon's authenticated route is always configured (its ``Bearer`` key comes from the
environment), ``/stats`` recording is always on, and nothing is switched off for a number (the
"vs proxy" scenarios switch one feature on).
"""

from __future__ import annotations

from dataclasses import dataclass

PROFILE_PATH = "/profiles/12345"
SECURE_PATH = "/secure/profiles/12345"
EDGE_PATH = "/edge/profiles/12345"
EDGE_ORIGIN = "https://app.example"
PROXY = "proxy"
"""The scenario ``min_vs_proxy`` compares with: plain proxying, everything else default."""
CLIENT_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
"""What the client sends in ``tracing-propagation`` (the W3C spec's example, sampled): the
same on every request, so wrk needs no script, which would cost the client CPU alone."""


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
    config: str | None = None
    """propylon's config for this scenario, a template in this folder (None:
    routes.ocelot.json); ``{rs256_public_file}`` in it becomes the run's RS256 key."""
    origin: str | None = None
    """Requests carry ``Origin: <origin>`` (a browser's cross-origin call)."""
    redis: bool = False
    """propylon keeps its rate-limit counters in Redis (``PROPYLON_BENCH_REDIS_URL``, by
    default the machine's redis://127.0.0.1:6379/0)."""
    admin_scraped: bool = False
    """propylon runs with ``--admin 127.0.0.1:9901``, scraped every second during the load
    (``/metrics`` and ``/dashboard.json``: harness/scrape.py); other entries run as usual."""
    min_vs_proxy: float | None = None
    """Propylon's median rps here over propylon's median rps in ``proxy``, same run: what a
    feature costs the gateway itself, whatever nginx does. Judged only when ``proxy`` ran."""
    access_log: bool = False
    """propylon writes its access log (JSON, the default format) to ``access.log`` in its run
    folder; the lines are counted against the requests after the run (harness/access_log.py)."""
    otlp_export: bool = False
    """propylon exports every request's spans (sample ratio 1) to the harness's OTLP/HTTP
    receiver (harness/otlp_receiver.py), which counts them; so do the gateway's /stats."""
    traceparent: bool = False
    """Requests carry ``traceparent: CLIENT_TRACEPARENT``, which the gateway continues."""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        PROXY,
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
        "proxy-admin",
        "proxy only, admin listener scraped every second (/metrics, /dashboard.json)",
        PROFILE_PATH,
        admin_scraped=True,
    ),
    Scenario(
        "access-log",
        "as proxy, + access log (JSON, to a file)",
        PROFILE_PATH,
        access_log=True,
        min_vs_proxy=0.85,
    ),
    Scenario(
        "tracing-export",
        "as proxy, + spans exported (sampling 1.0) to a local OTLP receiver",
        PROFILE_PATH,
        otlp_export=True,
        min_vs_proxy=0.70,
    ),
    Scenario(
        "tracing-propagation",
        "as proxy, the client's traceparent continued (no export)",
        PROFILE_PATH,
        traceparent=True,
        # "Within noise": propagation is always on, so proxy is the off baseline.
        min_vs_proxy=0.95,
    ),
    Scenario(
        "tls",
        "proxy only over TLS (keep-alive, TLS 1.3), ~200 B JSON",
        PROFILE_PATH,
        tls=True,
    ),
    Scenario(
        "edge",
        "+ JWT RS256 (cached), rate limit by sub (in-process), CORS",
        EDGE_PATH,
        algorithm="RS256",
        bearer=True,
        config="routes.edge.yaml",
        origin=EDGE_ORIGIN,
        min_ratio=0.45,
    ),
    Scenario(
        "edge-workers2",
        "edge, --workers 2 (counters shared across workers), unpinned",
        EDGE_PATH,
        algorithm="RS256",
        bearer=True,
        config="routes.edge.yaml",
        origin=EDGE_ORIGIN,
        workers=2,
        pinned=False,
    ),
    Scenario(
        "edge-redis",
        "edge with the counters in Redis",
        EDGE_PATH,
        algorithm="RS256",
        bearer=True,
        config="routes.edge.yaml",
        origin=EDGE_ORIGIN,
        redis=True,
        min_ratio=0.25,
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
