"""Usage metering: the hot path hands events to a sink; a writer persists them in batches."""
