"""Scenario (backend profiles, outages) and trace files for the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import yaml

from gateway.providers.errors import ErrorKind


@dataclass(frozen=True, slots=True)
class Incident:
    """A window of virtual time during which a backend fails every request the same way."""

    start_s: float
    end_s: float
    kind: ErrorKind
    retry_after_s: float | None = None
    #: Time a failing attempt costs the client (a refused connection is quick, a timeout is not).
    cost_s: float = 0.05


@dataclass(frozen=True, slots=True)
class Profile:
    ttft_ms: float
    #: Spread of TTFT as the sigma of a log-normal around `ttft_ms`.
    ttft_sigma: float
    tokens_per_s: float
    error_rate: float = 0.0
    incidents: tuple[Incident, ...] = ()
    #: Pool only: sequences served at once per replica, and replicas.
    max_num_seqs: int = 64
    replicas: int = 1
    #: Whether a non-streamed answer carries the provider's own TTFT/generation split (as
    #: Groq's usage timings do); otherwise the router sees only the total time, as with most.
    reports_timing: bool = False
    #: A heavy tail: this share of answers takes `tail_factor` times its drawn TTFT.
    tail_share: float = 0.0
    tail_factor: float = 1.0

    def incident_at(self, t: float) -> Incident | None:
        return next((i for i in self.incidents if i.start_s <= t < i.end_s), None)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    today: date
    seed: int
    profiles: dict[str, Profile]
    slo_ttft_ms: float | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TraceRequest:
    t: float
    model: str
    prompt_tokens: int
    max_tokens: int
    output_tokens: int
    features: frozenset[str] = frozenset()
    tags: tuple[tuple[str, str], ...] = ()
    #: The client asked for a stream (the trace's `stream`; default: not streamed).
    stream: bool = False


def _incident(raw: dict[str, Any]) -> Incident:
    return Incident(
        start_s=float(raw["start_s"]),
        end_s=float(raw["end_s"]),
        kind=ErrorKind(raw["kind"]),
        retry_after_s=float(raw["retry_after_s"]) if raw.get("retry_after_s") is not None else None,
        cost_s=float(raw.get("cost_s", 0.05)),
    )


def load_scenario(path: Path) -> Scenario:
    raw = yaml.safe_load(path.read_text())
    profiles = {
        name: Profile(
            ttft_ms=float(p["ttft_ms"]),
            ttft_sigma=float(p.get("ttft_sigma", 0.25)),
            tokens_per_s=float(p["tokens_per_s"]),
            error_rate=float(p.get("error_rate", 0.0)),
            incidents=tuple(_incident(i) for i in p.get("incidents", ())),
            max_num_seqs=int(p.get("max_num_seqs", 64)),
            replicas=int(p.get("replicas", 1)),
            reports_timing=bool(p.get("reports_timing", False)),
            tail_share=float(p.get("tail_share", 0.0)),
            tail_factor=float(p.get("tail_factor", 1.0)),
        )
        for name, p in raw["backends"].items()
    }
    today = raw.get("date", date.today())
    return Scenario(
        name=str(raw.get("name", path.stem)),
        today=today if isinstance(today, date) else date.fromisoformat(str(today)),
        seed=int(raw.get("seed", 1)),
        profiles=profiles,
        slo_ttft_ms=float(raw["slo_ttft_ms"]) if raw.get("slo_ttft_ms") is not None else None,
        notes=str(raw.get("notes", "")),
    )


def load_trace(path: Path) -> list[TraceRequest]:
    out = []
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        r = orjson.loads(line)
        out.append(
            TraceRequest(
                t=float(r["t"]),
                model=str(r["model"]),
                prompt_tokens=int(r["prompt_tokens"]),
                max_tokens=int(r.get("max_tokens", 512)),
                output_tokens=int(r.get("output_tokens", r.get("max_tokens", 256))),
                features=frozenset(r.get("features", ())),
                tags=tuple(sorted((r.get("tags") or {}).items())),
                stream=bool(r.get("stream", False)),
            )
        )
    return sorted(out, key=lambda r: r.t)
