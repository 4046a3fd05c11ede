"""The operations listener: an ``aiohttp.web`` app apart from the data plane (design.md s.8).

It runs in its own process, a sibling of the workers under the supervisor
(``engine/runner.py``), and learns everything from the run directory the workers already
share: their stats sockets (``stats/exchange.py``) and their readiness files
(``admin/readiness.py``). A scrape therefore costs a worker one snapshot, never a turn of
its event loop spent rendering text.
"""
