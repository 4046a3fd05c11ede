"""Static checks of path templates (``/posts/{postId}``) and route regular expressions.

Matching itself is the router's job; here we only make sure a template is well formed and that
a downstream template never names a value the upstream side cannot supply (such a request
would otherwise be forwarded with a literal ``{id}`` in its path).
"""

from __future__ import annotations

import re

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def placeholders(template: str) -> list[str]:
    """Placeholder names in order; ValueError for stray or nested braces or empty names."""
    names: list[str] = []
    position = 0
    for found in _PLACEHOLDER.finditer(template):
        _no_stray_braces(template, template[position : found.start()])
        name = found.group(1)
        if not name.strip():
            raise ValueError(f"empty placeholder '{{}}' in {template!r}")
        names.append(name)
        position = found.end()
    _no_stray_braces(template, template[position:])
    return names


def _no_stray_braces(template: str, text: str) -> None:
    if "{" in text or "}" in text:
        raise ValueError(f"unbalanced '{{' or '}}' in {template!r}")


def check_upstream(template: str) -> list[str]:
    if not template.startswith("/"):
        raise ValueError(f"must start with '/', got {template!r}")
    names = placeholders(template)
    seen: set[str] = set()
    for name in names:
        key = name.lower()
        if key in seen:
            raise ValueError(f"placeholder {{{name}}} appears twice in {template!r}")
        seen.add(key)
    return names


def check_downstream(template: str, available: list[str], upstream_text: str) -> None:
    if not template.startswith("/"):
        raise ValueError(f"must start with '/', got {template!r}")
    known = {name.lower() for name in available}
    for name in placeholders(template):
        if name.lower() not in known:
            raise ValueError(
                f"placeholder {{{name}}} is not captured by the upstream side ({upstream_text})"
            )


def is_catch_all(template: str) -> bool:
    """Ocelot's hard-wired catch-all shape: ``/{anything}`` and nothing else."""
    return (
        template.startswith("/{")
        and template.endswith("}")
        and len(_PLACEHOLDER.findall(template)) == 1
        and template.count("{") == 1
    )


def regex_groups(pattern: str) -> list[str]:
    """Named groups of a route regex; ValueError naming the regex problem."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise ValueError(f"invalid regular expression: {exc.msg}{where}") from None
    return list(compiled.groupindex)
