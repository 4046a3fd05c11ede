"""The shipped examples load, and the Ocelot and seed examples route like the native one.

The Ocelot example also carries the second seed's own two routes (``/api/v1/...``), which the
other examples do not have; the comparison covers the requests they share.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from propylon.config.loader import load_config
from propylon.config.model import ConfigFormat, GatewayConfig
from propylon.routing import MethodNotAllowed, RouteMatch, Router

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ENV = {"PROPYLON_JWT_SECRET": "example-secret-0123456789abcdef0123"}

REQUESTS = [
    ("POST", "/auth/users"),
    ("POST", "/auth/token"),
    ("GET", "/profiles"),
    ("POST", "/profiles"),
    ("GET", "/profiles/42"),
    ("PATCH", "/profiles/abc"),
    ("DELETE", "/profiles/7"),
    ("GET", "/auth/users"),
    ("PUT", "/profiles/7"),
    ("GET", "/nope"),
]
# An Ocelot placeholder ending a template takes the rest of the path, slashes included; the
# seed's regex ([^/]+) does not, so this one is only compared between native and Ocelot.
TEMPLATE_ONLY = [("GET", "/profiles/1/extra")]


def load(name: str) -> GatewayConfig:
    return load_config(str(EXAMPLES / name), env=ENV)


def outcome(router: Router, method: str, path: str) -> tuple[object, ...]:
    """What a client would see: where the request goes and who may send it, or the refusal."""
    result = router.match(method, "localhost:8000", path, "x=1")
    if isinstance(result, RouteMatch):
        spec = result.route.spec
        target = result.downstream_target(path, "x=1")
        urls = tuple(f"{spec.downstream_scheme}://{h}{target}" for h in spec.downstream_hosts)
        return urls, spec.auth.providers if spec.auth else ()
    if isinstance(result, MethodNotAllowed):
        return (405, result.allowed)
    return (404,)


@pytest.mark.parametrize(
    ("name", "fmt", "count"),
    [
        ("propylon.yaml", ConfigFormat.NATIVE, 4),
        ("ocelot.json", ConfigFormat.OCELOT, 6),
        ("seed-routes.yaml", ConfigFormat.SEED, 5),
    ],
)
def test_examples_load_cleanly(name: str, fmt: ConfigFormat, count: int) -> None:
    config = load(name)
    assert config.format is fmt
    assert len(config.routes) == count
    assert config.warnings == ()
    assert set(config.providers) == {"Bearer"}


@pytest.mark.parametrize("other", ["ocelot.json", "seed-routes.yaml"])
def test_compatibility_examples_route_like_the_native_one(other: str) -> None:
    native = Router(load("propylon.yaml").routes)
    compat = Router(load(other).routes)
    requests = REQUESTS + TEMPLATE_ONLY if other == "ocelot.json" else REQUESTS
    for method, path in requests:
        assert outcome(compat, method, path) == outcome(native, method, path), (method, path)


def test_native_example_outcomes() -> None:
    native = Router(load("propylon.yaml").routes)
    assert outcome(native, "GET", "/profiles/42") == (
        ("http://profiles:8000/profiles/42?x=1",),
        ("Bearer",),
    )
    assert outcome(native, "POST", "/auth/token") == (("http://auth:8000/auth/token?x=1",), ())
    assert outcome(native, "PUT", "/profiles/7") == (405, ("DELETE", "GET", "PATCH"))
    assert outcome(native, "GET", "/nope") == (404,)
