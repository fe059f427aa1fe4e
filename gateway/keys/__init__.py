"""API keys: a hashed key store in the ledger database, an in-memory cache for the
request path, and per-key rate limits (per process, or shared through Redis)."""
