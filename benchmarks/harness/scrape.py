"""The ``proxy-admin`` scenario's scraper: what a Prometheus server and an open dashboard do
to the gateway while wrk loads it (``GET /metrics`` and ``GET /dashboard.json`` on the admin
listener, once a second each), so the table shows what being watched costs the data plane.
Each scrape's time is kept for the run's log."""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request

ADMIN_PORT = 9901
PATHS = ("/metrics", "/dashboard.json")
INTERVAL = 1.0


class Scraper:
    def __init__(self, port: int = ADMIN_PORT) -> None:
        self.port = port
        self.times_ms: dict[str, list[float]] = {path: [] for path in PATHS}
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="admin-scraper", daemon=True)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in PATHS:
                started = time.perf_counter()
                try:
                    url = f"http://127.0.0.1:{self.port}{path}"
                    with urllib.request.urlopen(url, timeout=5) as answer:
                        answer.read()
                    self.times_ms[path].append((time.perf_counter() - started) * 1000)
                except OSError:
                    self.failures += 1
            self._stop.wait(INTERVAL)

    def summary(self) -> str:
        parts = []
        for path, times in self.times_ms.items():
            if times:
                parts.append(
                    f"{path}: {len(times)} scrapes, median {statistics.median(times):.1f} ms, "
                    f"max {max(times):.1f} ms"
                )
        parts.append(f"failures: {self.failures}")
        return "; ".join(parts)
