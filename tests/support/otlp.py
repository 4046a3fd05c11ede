"""A real OTLP/HTTP trace receiver on loopback: it decodes what the gateway exports.

``POST /v1/traces`` bodies are ``ExportTraceServiceRequest`` protobufs (the
``opentelemetry-proto`` package, part of the ``[otlp]`` extra), gzip-compressed or not,
decoded here as a collector would, and kept as plain ``ReceivedSpan`` records for
assertions. ``refuse`` scripts failures: each post takes the next status from it (and is
not decoded) until it is empty.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind is not None else None


def _attributes(pairs: list[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@dataclass
class ReceivedSpan:
    name: str
    kind: str
    """``SERVER``, ``CLIENT``, ..."""
    trace_id: str
    """32 hex digits, as in a ``traceparent``."""
    span_id: str
    parent_span_id: str
    """"" for a root span."""
    trace_state: str
    start_ns: int
    end_ns: int
    status_code: str
    """``STATUS_CODE_UNSET`` or ``STATUS_CODE_ERROR``."""
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str


@dataclass
class OtlpReceiver:
    spans: list[ReceivedSpan] = field(default_factory=list)
    posts: int = 0
    content_types: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    """Every post's request headers (names lower-cased)."""
    refuse: list[int] = field(default_factory=list)
    port: int = 0
    runner: web.AppRunner | None = None

    async def start(self) -> OtlpReceiver:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        # auto_decompress off: a gzip body is decompressed below, which shows it was one.
        self.runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _traces(self, request: web.Request) -> web.Response:
        self.posts += 1
        self.content_types.append(request.content_type)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        if self.refuse:
            return web.Response(status=self.refuse.pop(0), headers={"Retry-After": "0"})
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for resource_spans in message.resource_spans:
            resource = _attributes(list(resource_spans.resource.attributes))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            name=span.name,
                            kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            trace_state=span.trace_state,
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            status_code=span.status.StatusCode.Name(span.status.code),
                            attributes=_attributes(list(span.attributes)),
                            resource=resource,
                            scope=scope_spans.scope.name,
                        )
                    )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def of_kind(self, kind: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.kind == kind]

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
