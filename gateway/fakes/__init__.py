"""Faithful local fakes of every backend: real loopback HTTP servers speaking each
provider's wire format. They power the tests, the load tests, `make run`'s simulated
providers and the policy simulator."""
