"""Distributed tracing: W3C trace context on every request (``context``, compiled), and span
export over OTLP/HTTP through the OpenTelemetry SDK (``export``, loaded only when an endpoint
is configured: the SDK is the optional ``[otlp]`` extra)."""
