"""Catalogue drift: the catalogue's rows against what each provider lists as served now.
Pure (the listings are read elsewhere): which rows are gone, which Llama 4 model IDs are new,
and which lifecycle dates fall due soon."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from gateway.catalogue.deployments import Catalogue, Deployment

#: How a Llama 4 model ID reads at the providers (meta-llama/Llama-4-…, llama4-…, llama-4-…).
LLAMA_4 = re.compile(r"llama[-_ ]?4", re.IGNORECASE)
#: Lifecycle dates closer than this are reported as due.
DUE_WITHIN = timedelta(days=30)


@dataclass(slots=True)
class Drift:
    #: Rows whose model ID the provider no longer lists.
    gone: list[Deployment] = field(default_factory=list)
    #: provider -> Llama 4 model IDs it lists that no row names.
    new: dict[str, list[str]] = field(default_factory=dict)
    #: Rows whose retirement date is within `DUE_WITHIN` (and not yet past).
    due: list[Deployment] = field(default_factory=list)
    #: Providers whose listing could not be read.
    unknown: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.gone or self.new or self.due)


def compare(catalogue: Catalogue, listings: Mapping[str, frozenset[str] | None], today: date) -> Drift:
    """`listings`: provider -> model IDs it serves now (None: could not tell)."""
    drift = Drift()
    rows = [d for m in catalogue.models for d in catalogue.deployments(m)]
    for provider, served in listings.items():
        if served is None:
            drift.unknown.append(provider)
            continue
        mine = [d for d in rows if d.provider == provider and not d.retired_on(today)]
        drift.gone += [d for d in mine if d.model_id not in served]
        named = {d.model_id for d in rows if d.provider == provider}
        new = sorted(m for m in served if LLAMA_4.search(m) and m not in named and not _profile_of(m, named))
        if new:
            drift.new[provider] = new
    drift.due = [
        d for d in rows if d.retired is not None and today <= d.retired.date <= today + DUE_WITHIN and not d.reenabled
    ]
    return drift


def _profile_of(model_id: str, named: set[str]) -> bool:
    """Bedrock lists `meta.x` where the catalogue names its inference profile `us.meta.x`."""
    return any(n.endswith("." + model_id) for n in named)
