"""What the rest of the gateway may know about a backend, in one record per provider.

Each provider's own module exports its `SPEC`; `gateway.providers.registry` collects them,
and every list that used to repeat provider names (configuration defaults, key variables,
latency priors, the demo's fakes, the catalogue's known providers) is derived from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: How a provider is turned on: an API key (with a default or configured base URL), a base
#: URL alone (self-hosted servers), AWS credentials, a list of pool replica URLs, or a list
#: of deployments (litellm).
Credentials = Literal["api_key", "url", "aws", "pool", "deployments"]


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    #: "module:Class" of the adapter (imported when the provider is configured).
    adapter: str
    #: "module:Class" of Corral's fake of this backend; None when there is none.
    fake: str | None = None
    #: Default base URL; "" when there is none (derived, per replica, or it must be configured).
    base_url: str = ""
    #: Environment variable holding the API key (None: the provider takes none from the environment).
    key_env: str | None = None
    credentials: Credentials = "api_key"
    #: A local development backend: never assumed present by offline tools.
    dev_only: bool = False
    #: The self-hosted pool: fixed GPU cost, live load from its replicas, spill-over.
    pooled: bool = False
    #: Whether demo mode (no credentials at all) starts this provider's fake.
    demo: bool = True
    #: Latency priors until the deployment has served anything (overridable in config).
    prior_ttft_ms: float = 500.0
    prior_tokens_per_s: float = 100.0
    #: Layout of the provider's usage/billing export that `corral reconcile` reads.
    billing_export: Literal["generic", "aws_cur"] = "generic"
