"""The response cache: whole answers of deterministic requests, kept for a time and served
again to the same team (see README "Response cache"). `decide.py` says whether a request
may use it and under which key, `stores.py` keeps entries (Redis or a byte-bounded LRU),
`shapes.py` turns a stream into a whole answer and back, `service.py` ties them together."""
