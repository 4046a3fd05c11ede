"""Distributed tracing: W3C trace context on every request (``context``, compiled), and span
export over OTLP/HTTP (``export``, loaded only when an endpoint is configured: it needs the
optional ``[otlp]`` extra), whose protobuf ``otlp`` writes (compiled)."""
