"""Reader for the first seed's route list: a YAML (or JSON) list of

    - method: get                     # one method, a list of methods, or "*" for every method
      path_regex: ^\\/(profiles)$      # matched with fullmatch against the canonical path
      service_url: http://profiles:5000
      auth_required: false

As in the seed, the whole request path is forwarded unchanged to ``service_url`` (a path in
``service_url`` is prepended to it), routes are tried in file order, and method names are
case-insensitive. ``auth_required: true`` means a token from the ``Bearer`` provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from propylon.config import near_miss, templates, values
from propylon.config.diagnostics import Diagnostics, Loc, kind_of
from propylon.config.document import Document
from propylon.config.model import AuthRequirement, DownstreamHost, RouteSpec
from propylon.config.reader import ProviderRef, ReadResult

BEARER = "Bearer"
FIELDS = ("method", "path_regex", "service_url", "auth_required")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class _SeedRoute(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    method: Annotated[list[str], BeforeValidator(_as_list)]
    path_regex: str
    service_url: str
    auth_required: bool


def read_seed(document: Document) -> ReadResult:
    diag = Diagnostics(document.file)
    if not isinstance(document.data, list):
        diag.error((), f"a seed route file is a list of routes, got {kind_of(document.data)}")
        return ReadResult((), tuple(diag.problems))
    if not document.data:
        diag.warning((), "no routes: every request will be answered 404")
    routes: list[RouteSpec] = []
    refs: list[ProviderRef] = []
    for index, raw in enumerate(document.data):
        loc: Loc = (index,)
        if isinstance(raw, Mapping):
            for key in raw:
                if key not in FIELDS:
                    _unknown(str(key), (*loc, str(key)), diag)
        try:
            route = _SeedRoute.model_validate(raw)
        except ValidationError as exc:
            diag.validation(exc, loc)
            continue
        spec = _compile(route, loc, diag)
        if spec is not None:
            routes.append(spec)
            if spec.auth is not None:
                refs.append(ProviderRef(diag.path((*loc, "auth_required")), BEARER))
    return ReadResult(
        routes=tuple(routes), problems=tuple(diag.problems), provider_refs=tuple(refs)
    )


def _unknown(key: str, at: Loc, diag: Diagnostics) -> None:
    guess = near_miss.closest(key, FIELDS)
    if guess == "auth_required":
        # The one key that protects a route: a slip in it must not pass as a warning.
        diag.error(at, f"unknown key, a near miss of {guess}; did you mean {guess}?")
    else:
        hint = f" (did you mean {guess}?)" if guess else ""
        diag.warning(at, f"unknown key; ignored{hint}")


def _compile(route: _SeedRoute, loc: Loc, diag: Diagnostics) -> RouteSpec | None:
    ok = True
    methods: set[str] = set()
    if route.method == ["*"]:
        pass
    elif not route.method:
        diag.error((*loc, "method"), 'at least one method is required ("*" for every method)')
        ok = False
    else:
        for i, name in enumerate(route.method):
            at = (*loc, "method") if len(route.method) == 1 else (*loc, "method", i)
            try:
                methods.add(values.http_method(name))
            except ValueError as exc:
                diag.error(at, str(exc))
                ok = False
    try:
        templates.regex_groups(route.path_regex)
    except ValueError as exc:
        diag.error((*loc, "path_regex"), str(exc))
        ok = False
    target = _service(route.service_url, (*loc, "service_url"), diag)
    if target is None or not ok:
        return None
    scheme, host, prefix = target
    return RouteSpec(
        source=diag.path(loc),
        upstream_path=route.path_regex,
        downstream_hosts=(host,),
        methods=frozenset(methods),
        path_is_regex=True,
        # the seed matched with re.fullmatch, which is case-sensitive unless the regex says
        case_sensitive=True,
        downstream_scheme=scheme,
        downstream_path=None,
        downstream_path_prefix=prefix,
        auth=AuthRequirement(providers=(BEARER,)) if route.auth_required else None,
    )


def _service(url: str, at: Loc, diag: Diagnostics) -> tuple[str, DownstreamHost, str] | None:
    try:
        parts = values.http_url(url, what="service_url")
    except ValueError as exc:
        diag.error(at, str(exc))
        return None
    if parts.query:
        diag.error(at, f"service_url must not contain a query string: {url!r}")
        return None
    scheme = parts.scheme.lower()
    assert parts.hostname is not None
    try:
        port = values.port(parts.port) if parts.port is not None else values.SCHEMES[scheme]
    except ValueError as exc:
        diag.error(at, str(exc))
        return None
    prefix = parts.path.rstrip("/")
    if any(segment in {".", ".."} for segment in prefix.split("/")):
        diag.error(at, f"the path of service_url must not contain '.' or '..' segments: {url!r}")
        return None
    return scheme, DownstreamHost(values.host_name(parts.hostname), port), prefix
