"""The ``Bearer`` provider of Ocelot and first-seed files, described by environment variables.

Those formats have nowhere to put key material (Ocelot keeps it in C# start-up code), so it
comes from ``PROPYLON_JWT_*``. A variable set to the empty string counts as unset, which is
what ``VAR=`` in a compose file usually means.
"""

from __future__ import annotations

from collections.abc import Mapping

from propylon.config.model import JwtProviderSpec, Problem
from propylon.config.providers import ProviderInput, build_provider

ENV_FILE = "<environment>"
BEARER = "Bearer"

VARIABLES = {
    "secret": "PROPYLON_JWT_SECRET",
    "public_key_file": "PROPYLON_JWT_PUBLIC_KEY",
    "jwks_url": "PROPYLON_JWKS_URL",
    "algorithms": "PROPYLON_JWT_ALGORITHMS",
    "issuer": "PROPYLON_JWT_ISSUER",
    "audience": "PROPYLON_JWT_AUDIENCE",
    "leeway": "PROPYLON_JWT_LEEWAY",
}
KEY_VARIABLES = (VARIABLES["secret"], VARIABLES["public_key_file"], VARIABLES["jwks_url"])
HOW_TO_DEFINE = (
    f"set {KEY_VARIABLES[0]} (HS256 secret), {KEY_VARIABLES[1]} (PEM file) or "
    f"{KEY_VARIABLES[2]}, plus optionally {VARIABLES['algorithms']}"
)


def bearer_from_environment(
    env: Mapping[str, str],
) -> tuple[JwtProviderSpec | None, list[Problem]]:
    """The Bearer provider when a key variable is set, else None; and problems found."""
    problems: list[Problem] = []

    def error(field: str, message: str) -> None:
        problems.append(Problem(ENV_FILE, VARIABLES.get(field, field), message))

    def warning(field: str, message: str) -> None:
        problems.append(Problem(ENV_FILE, VARIABLES.get(field, field), message, "warning"))

    def get(field: str) -> str | None:
        value = env.get(VARIABLES[field], "").strip()
        return value or None

    if not any(get(field) for field in ("secret", "public_key_file", "jwks_url")):
        return None, problems
    secret = env.get(VARIABLES["secret"]) or None
    leeway = 0.0
    leeway_text = get("leeway")
    if leeway_text is not None:
        try:
            leeway = float(leeway_text)
        except ValueError:
            error("leeway", f"must be a number of seconds, got {leeway_text!r}")
            return None, problems
    algorithms_text = get("algorithms")
    provider = build_provider(
        ProviderInput(
            name=BEARER,
            secret=secret.encode("utf-8") if secret is not None else None,
            public_key_file=get("public_key_file"),
            jwks_url=get("jwks_url"),
            algorithms=_split(algorithms_text) if algorithms_text is not None else None,
            issuer=get("issuer"),
            audience=_split(get("audience") or ""),
            leeway=leeway,
        ),
        error,
        warning,
        key_fields=", ".join(KEY_VARIABLES),
    )
    return provider, problems


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())
