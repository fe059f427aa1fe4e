"""One adapter per backend, behind the `Provider` interface in `base`."""
