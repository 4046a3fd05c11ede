"""Build hook: compile the request path with mypyc; everything else is in pyproject.toml.

The modules below run for every request. mypyc (part of mypy, the type checker this project
already runs strict) compiles them to C extensions from the same type-annotated source: about
half the gateway's Python time per request goes away (docs/performance.md). Every other
module stays plain Python. ``PROPYLON_PURE_PYTHON=1`` skips the compilation (no C compiler
needed); the gateway behaves the same, only slower.
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILED = [
    # engine: the protocols on both sides, the exchange between them, per-request decisions
    # (and each config generation, whose plan endings every chain calls)
    "src/propylon/engine/server.py",
    "src/propylon/engine/exchange.py",
    "src/propylon/engine/gateway.py",
    "src/propylon/engine/watchdog.py",
    "src/propylon/engine/client_limits.py",
    "src/propylon/engine/responder.py",
    "src/propylon/engine/route_plan.py",
    "src/propylon/engine/generation.py",
    # the chain: stage contract, the run loop, and the stages of authenticated routes
    "src/propylon/plane/stage.py",
    "src/propylon/plane/chain.py",
    "src/propylon/stages/authn.py",
    "src/propylon/stages/ip_filter.py",
    "src/propylon/stages/cors.py",
    "src/propylon/stages/rate_limit.py",
    "src/propylon/stages/assertion.py",
    # rate limiting: the algorithms, the header fields, the in-process and workers' stores
    "src/propylon/ratelimit/gcra.py",
    "src/propylon/ratelimit/fixed_window.py",
    "src/propylon/ratelimit/fields.py",
    "src/propylon/state/store.py",
    "src/propylon/state/memory.py",
    "src/propylon/state/shared.py",
    # toward the upstreams: connections, pools, request heads, the balancers, host health,
    # retries
    "src/propylon/upstream/connection.py",
    "src/propylon/upstream/pool.py",
    "src/propylon/upstream/head.py",
    "src/propylon/upstream/selector.py",
    "src/propylon/upstream/health.py",
    "src/propylon/upstream/retry.py",
    # the circuit breaker: its state and its two stages
    "src/propylon/policies/circuit_breaker.py",
    "src/propylon/stages/breaker.py",
    # HTTP rules every request meets: the head, the Host check, client-address sets
    "src/propylon/http/request.py",
    "src/propylon/http/host.py",
    "src/propylon/http/cidr.py",
    # a new request target (a decision-cache miss): canonicalise, match, build the target
    "src/propylon/paths.py",
    "src/propylon/routing.py",
    # per-route stages and counters
    "src/propylon/policies/forwarding.py",
    "src/propylon/policies/identity.py",
    "src/propylon/policies/claim_headers.py",
    "src/propylon/policies/request_id.py",
    "src/propylon/policies/ip_rules.py",
    "src/propylon/policies/cors.py",
    "src/propylon/stats/counters.py",
    "src/propylon/stats/histogram.py",
    # authentication: the token cache and, on a miss, parsing and claim checks
    "src/propylon/auth/authenticator.py",
    "src/propylon/auth/bearer.py",
    "src/propylon/auth/claims.py",
    "src/propylon/auth/compact_jws.py",
    "src/propylon/auth/principal.py",
    "src/propylon/auth/requirements.py",
    "src/propylon/auth/token_cache.py",
    "src/propylon/auth/verifier.py",
    "src/propylon/auth/assertion.py",
    # W3C trace context on every proxied request, and the spans' protobuf (written by the
    # exporter thread, which shares the worker's GIL with the event loop)
    "src/propylon/tracing/context.py",
    "src/propylon/tracing/otlp.py",
    # the access log's line, built at the end of every request when the log is on
    "src/propylon/logs/access.py",
    "src/propylon/logs/formats.py",
    "src/propylon/logs/writer.py",
]

# mypyc type-checks what it compiles. Strictness is `make typecheck`'s job (pyproject's
# [tool.mypy]); here the default rules apply, and a library that is not importable where
# the wheel is built (pip's isolated build environment has only the build requirements)
# counts as untyped, so its values are passed through unchecked.
MYPY_FLAGS = ["--config-file", os.devnull, "--ignore-missing-imports"]

ext_modules = []
if os.environ.get("PROPYLON_PURE_PYTHON") != "1":
    from mypyc.build import mypycify

    ext_modules = mypycify([*MYPY_FLAGS, *COMPILED], opt_level="3", group_name="propylon")

setup(ext_modules=ext_modules)
