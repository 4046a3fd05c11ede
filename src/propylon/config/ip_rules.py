"""IP allow and block lists, as every format writes them (Ocelot ``SecurityOptions``, the
native ``ip_rules``): entries checked by the parser that judges clients (``http.cidr``), and
the rule that a route's own lists replace the global ones."""

from __future__ import annotations

from collections.abc import Sequence

from propylon.config import values
from propylon.config.diagnostics import Diagnostics, Loc
from propylon.config.model import IpRules


def address_list(
    entries: Sequence[str], loc: Loc, diag: Diagnostics, *, host_bits_are_errors: bool
) -> tuple[str, ...]:
    """The entries of one list, each reported at ``loc[i]`` when it is not an address,
    network or range. A network with host bits set (``192.168.1.5/24``) is an error in the
    native format and a warning in Ocelot files (Ocelot reads it as the whole network)."""
    kept: list[str] = []
    for i, text in enumerate(entries):
        try:
            span = values.address_range(text)
        except ValueError as exc:
            diag.error((*loc, i), str(exc))
            continue
        if span.host_bits:
            message = f"{text.strip()!r} has host bits set; it means {span}"
            if host_bits_are_errors:
                diag.error((*loc, i), f"{text.strip()!r} has host bits set; did you mean {span}?")
                continue
            diag.warning((*loc, i), message + ", as in Ocelot; write that to say so")
        kept.append(text.strip())
    return tuple(kept)


def effective(route: IpRules | None, glob: IpRules | None) -> IpRules | None:
    """The rules a route runs: its own when it lists any address (they replace the global
    rules entirely, flag included, as Ocelot's ``SecurityOptionsCreator`` does), else the
    global ones; None when neither lists an address."""
    if route:
        return route
    if glob:
        return glob
    return None
