"""The fault-injection suite (issue #8): one module per fault family, each scenario's
docstring stating the invariant it checks; the table is README.md, Reliability / Faults."""
