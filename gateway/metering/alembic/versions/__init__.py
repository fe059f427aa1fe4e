"""Ledger schema revisions, applied in order by `gateway.metering.migrate`."""
