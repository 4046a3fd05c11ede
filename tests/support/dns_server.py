"""A real DNS server on loopback UDP, answering what the test says (dnspython's message API).

``records`` maps a name (lower case, no trailing dot) to its IPv4 addresses; the test changes
it between queries. A name not in it is NXDOMAIN; AAAA questions get an empty answer.
``failing`` answers SERVFAIL to everything (a broken resolver), ``silent`` answers nothing
(a resolver that times out).
"""

from __future__ import annotations

import asyncio
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsServer(asyncio.DatagramProtocol):
    def __init__(self, records: dict[str, list[str]] | None = None, ttl: int = 60) -> None:
        self.records: dict[str, list[str]] = dict(records or {})
        self.ttl = ttl
        self.failing = False
        self.silent = False
        self.queries: list[tuple[str, str]] = []
        """(name, type) of every question received."""
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    async def start(self) -> DnsServer:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0)
        )
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    @property
    def nameserver(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def a_queries(self, name: str) -> int:
        return sum(1 for n, kind in self.queries if n == name and kind == "A")

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind))
        if self.silent:
            return
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if self.failing:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A and self.records[name]:
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, self.ttl, dns.rdataclass.IN, dns.rdatatype.A, self.records[name]
                )
            )
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ThreadedDnsServer:
    """A ``DnsServer`` on its own loop in a thread: for tests whose loop blocks while a
    gateway process starts (and resolves its names against this server)."""

    def __init__(self, records: dict[str, list[str]] | None = None, ttl: int = 60) -> None:
        self.server = DnsServer(records, ttl)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> DnsServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(5)
        return self.server

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self.server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
