"""Telemetry: Prometheus metrics, OpenTelemetry traces and structured logs.

Per-request figures are derived from usage events off the request path (a sink that
only appends), so observing the gateway costs the hot path next to nothing.
"""
