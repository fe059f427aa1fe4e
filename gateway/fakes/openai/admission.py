"""Rate-limit admission shared by the fakes of providers that publish live limits."""

from __future__ import annotations

from gateway.fakes.openai.ratelimit import Bucket
from gateway.fakes.openai.wire import Exchange, Problem


class BucketAdmission:
    """Admission by a requests bucket and a tokens bucket, as the rate-limiting fakes do
    it: refuse with the exhausted limit's numbers, else take from both and answer with
    the provider's rate-limit headers (`rate_headers`, per dialect)."""

    request_limit: Bucket
    token_limit: Bucket
    #: The shortest wait a refusal reports (the provider's own rounding).
    min_wait_s = 0.001

    def rate_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def take_from_buckets(self, exchange: Exchange, requested: int) -> Problem | None:
        if self.request_limit.remaining() < 1:
            return self._exhausted(exchange.model, "requests", self.request_limit, 1)
        if not self.token_limit.take(requested):
            return self._exhausted(exchange.model, "tokens", self.token_limit, requested)
        self.request_limit.take(1)
        exchange.headers = {**self.rate_headers(), "x-request-id": exchange.request_id}
        return None

    def _exhausted(self, model: str, kind: str, bucket: Bucket, requested: int) -> Problem:
        return Problem(
            "rate_limited",
            model=model,
            wait_s=max(bucket.wait_s(requested), self.min_wait_s),
            limit_kind=kind,
            limit=bucket.limit,
            used=bucket.used(),
            requested=requested,
            headers=self.rate_headers(),
        )
