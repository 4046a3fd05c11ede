"""Example propylon plugin: an API-key check against a file of hashed keys.

The file holds one ``name:sha256-hex-of-key`` per line (``#`` starts a comment), so the
keys themselves are never stored; make one entry with::

    printf 'reports-bot:%s\\n' "$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" >> keys.txt

A request whose ``X-Api-Key`` (or the configured header) hashes to a listed key goes on,
with ``X-Api-Client: <name>`` for the upstream; any other is refused 401. Config::

    plugins:
      api_keys:
        use: "api_keys:ApiKeyCheck"        # this file's directory on PYTHONPATH
        settings: {keys_file: /etc/propylon/keys.txt}
    routes:
      - path: /reports/{id}
        plugins: [api_keys]
        downstream: {hosts: ["reports:8080"]}
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from propylon.plugins import Call, Plugin

_ENTRY = re.compile(r"([A-Za-z0-9._-]+):([0-9a-f]{64})")


class ApiKeyCheck(Plugin):
    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        unknown = set(settings) - {"keys_file", "header"}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; expected keys_file, header")
        keys_file = settings.get("keys_file")
        if not isinstance(keys_file, str):
            raise ValueError("keys_file (a path) is required")
        self.header = str(settings.get("header", "X-Api-Key"))
        # Read once per worker at start-up: the per-request work is one hash and one lookup.
        self.clients: dict[str, str] = {}
        for number, raw in enumerate(Path(keys_file).read_text().splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            entry = _ENTRY.fullmatch(line)
            if entry is None:
                raise ValueError(f"{keys_file}:{number}: expected name:sha256-hex")
            self.clients[entry.group(2)] = entry.group(1)

    def on_request(self, call: Call) -> None:
        presented = call.request.header(self.header)
        # The lookup compares digests, not keys: timing reveals nothing about a valid key.
        digest = hashlib.sha256(presented.encode()).hexdigest() if presented else ""
        client = self.clients.get(digest)
        if client is None:
            call.refuse("A valid API key is required.", status=401)
        call.add_upstream_header("X-Api-Client", client)
