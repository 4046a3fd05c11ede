"""The signed hop's settings, whichever format describes them: the key, and each route's
audience.

The native format has an ``assertion:`` block (and a per-route ``assertion``); Ocelot and
first-seed files have nowhere to put it, so ``PROPYLON_ASSERTION_*`` variables describe it,
as ``PROPYLON_JWT_*`` describe their ``Bearer`` provider. Either way the private key is read
and checked here, at load time, so ``propylon check`` reports a missing, unreadable or
non-Ed25519 key file by its path and where it was named.

A route's audience is the service it reaches: by default the name of its downstream host
(``profiles`` for ``profiles:8002``, as in compose), or what the config maps that host to
(needed when the host is an address, as with ``make run``'s ``127.0.0.1``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from propylon.config.model import (
    DEFAULT_ASSERTION_ISSUER,
    DEFAULT_ASSERTION_LIFETIME,
    AssertionSettings,
    DownstreamHost,
    Problem,
)

ENV_FILE = "<environment>"
VARIABLES = {
    "key_file": "PROPYLON_ASSERTION_KEY_FILE",
    "issuer": "PROPYLON_ASSERTION_ISSUER",
    "lifetime": "PROPYLON_ASSERTION_LIFETIME",
    "public_keys_file": "PROPYLON_ASSERTION_PUBLIC_KEYS_FILE",
    "audiences": "PROPYLON_ASSERTION_AUDIENCES",
}
MIN_LIFETIME = 2
"""A signed assertion is reused for half its lifetime: below 2 s nothing could be reused."""
MAX_LIFETIME = 3600
HOW_TO_GENERATE = "create one with: propylon assertion-key PATH"

# No DSA entry: cryptography 51 warns (DeprecationWarning, printed on stderr) whenever
# ``dsa.DSAPrivateKey`` is looked up; a DSA key is named by its class below.
_KINDS: tuple[tuple[type, str], ...] = (
    (rsa.RSAPrivateKey, "an RSA key"),
    (ec.EllipticCurvePrivateKey, "an EC key"),
    (ed448.Ed448PrivateKey, "an Ed448 key"),
    (x25519.X25519PrivateKey, "an X25519 key"),
    (x448.X448PrivateKey, "an X448 key"),
)

Report = Callable[[str, str], None]
"""``report(field, message)``: field is one of the keys of ``VARIABLES``."""


def read_key(path: Path) -> bytes:
    """The PEM of the Ed25519 private key in ``path``; ValueError saying what is wrong."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file ({HOW_TO_GENERATE})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        # TypeError: an encrypted key (a password would have to live next to it anyway).
        raise ValueError(
            f"{path}: not an unencrypted PEM private key ({HOW_TO_GENERATE})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        kind = next(
            (name for t, name in _KINDS if isinstance(key, t)),
            f"a {type(key).__name__.removesuffix('PrivateKey')} key",
        )
        raise ValueError(
            f"{path}: holds {kind}; the assertion key must be Ed25519 ({HOW_TO_GENERATE})"
        )
    return pem


def build_settings(
    key_file: Path,
    issuer: str,
    lifetime: int,
    public_keys_file: Path | None,
    error: Report,
    warning: Report,
) -> AssertionSettings | None:
    """Check the settings as written; None after reporting what makes them unusable."""
    usable = True
    try:
        pem = read_key(key_file)
    except ValueError as exc:
        error("key_file", str(exc))
        pem = b""
        usable = False
    else:
        mode = stat.S_IMODE(os.stat(key_file).st_mode)
        if mode & 0o077:
            warning("key_file", f"{key_file} is readable by others (mode {mode:o}): chmod 600")
    if not issuer.strip():
        error("issuer", "must not be empty")
        usable = False
    if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
        error("lifetime", f"must be {MIN_LIFETIME} to {MAX_LIFETIME} seconds, got {lifetime}")
        usable = False
    if public_keys_file is not None and public_keys_file == key_file:
        error("public_keys_file", "must not be the key file: it would overwrite the key")
        usable = False
    if not usable:
        return None
    return AssertionSettings(
        key_file=str(key_file),
        key_pem=pem,
        issuer=issuer,
        lifetime=lifetime,
        public_keys_file=str(public_keys_file) if public_keys_file is not None else None,
    )


def check_audience(text: str) -> str:
    """An audience as services compare it: exactly, so no spaces or control characters."""
    if not text or len(text) > 255 or any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError(f"{text!r} is not an audience: 1-255 printable characters, no spaces")
    return text


def audience_of(hosts: tuple[DownstreamHost, ...], names: Mapping[str, str]) -> str:
    """The audience of a route with these downstream hosts: each host's mapped name (by
    ``host:port``, then ``host``), else the host name itself. ValueError when they differ:
    a round robin across two services would sign for the wrong one half the time."""
    found: dict[str, str] = {}
    for host in hosts:
        bracketed = f"[{host.host}]" if ":" in host.host else host.host
        audience = next(
            (
                names[key]
                for key in (f"{bracketed}:{host.port}", bracketed, host.host)
                if key in names
            ),
            host.host,
        )
        found.setdefault(audience, str(host))
    if len(found) != 1:
        listed = ", ".join(f"{where} -> {audience}" for audience, where in found.items())
        raise ValueError(f"the downstream hosts name different services ({listed})")
    return next(iter(found))


def environment_settings(
    env: Mapping[str, str],
) -> tuple[AssertionSettings | None, dict[str, str], list[Problem]]:
    """Assertions for Ocelot and first-seed files: on when ``PROPYLON_ASSERTION_KEY_FILE`` is
    set (empty counts as unset). Returns the settings, the host -> audience map, problems."""
    problems: list[Problem] = []

    def error(field: str, message: str) -> None:
        problems.append(Problem(ENV_FILE, VARIABLES[field], message))

    def warning(field: str, message: str) -> None:
        # Services then get no signed assertion the environment seems to ask for.
        problems.append(Problem(ENV_FILE, VARIABLES[field], message, "warning", security=True))

    def get(field: str) -> str | None:
        return env.get(VARIABLES[field], "").strip() or None

    key_file = get("key_file")
    if key_file is None:
        for field in ("issuer", "lifetime", "public_keys_file", "audiences"):
            if get(field) is not None:
                warning(field, f"ignored: assertions are off until {VARIABLES['key_file']} is set")
        return None, {}, problems
    lifetime = DEFAULT_ASSERTION_LIFETIME
    lifetime_text = get("lifetime")
    if lifetime_text is not None:
        try:
            lifetime = int(lifetime_text)
        except ValueError:
            error("lifetime", f"must be a whole number of seconds, got {lifetime_text!r}")
    names: dict[str, str] = {}
    for item in (get("audiences") or "").split(","):
        if not item.strip():
            continue
        host, sep, audience = (part.strip() for part in item.partition("="))
        try:
            if not sep or not host:
                raise ValueError(f"{item.strip()!r} is not host[:port]=audience")
            names[host] = check_audience(audience)
        except ValueError as exc:
            error("audiences", str(exc))
    public = get("public_keys_file")
    settings = build_settings(
        Path(key_file).resolve(),
        get("issuer") or DEFAULT_ASSERTION_ISSUER,
        lifetime,
        Path(public).resolve() if public is not None else None,
        error,
        warning,
    )
    return settings, names, problems
