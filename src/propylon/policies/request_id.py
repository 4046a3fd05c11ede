"""Request ids: taken from the client when sane, generated otherwise, sent both ways.

Ocelot calls the header ``RequestIdKey``. A client-supplied id is kept so a caller can
correlate its own logs, but only when it is short and made of visible ASCII: it is echoed
into upstream requests and responses and must not become a header-injection vector.
"""

from __future__ import annotations

import itertools
import os
import re

_ACCEPTABLE = re.compile(rb"[\x21-\x7e]{1,200}")


class RequestIdPolicy:
    __slots__ = ("_counter", "_prefix", "lower", "name")

    def __init__(self, name: str) -> None:
        self.name = name.encode("ascii")
        self.lower = self.name.lower()
        self._reseed()
        # Forked workers must not share the parent's prefix.
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = os.urandom(8).hex().encode("ascii")
        self._counter = itertools.count(1)

    def choose(self, incoming: bytes | None) -> bytes:
        if incoming is not None and _ACCEPTABLE.fullmatch(incoming):
            return incoming
        # 64 random bits per process + a counter: unique across workers and replicas for
        # correlation, without a getrandom() syscall per request. Ids are not secrets.
        return self._prefix + b"%016x" % next(self._counter)

    def line(self, incoming: bytes | None) -> bytes:
        """``choose``, as the header line (``Name: id``)."""
        return self.name + b": " + self.choose(incoming)
