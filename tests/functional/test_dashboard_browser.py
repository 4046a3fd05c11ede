"""The dashboard as an operator sees it: `propylon run --admin` as a real process with two
workers and an admin token, its page open in Debian's chromium (headless, driven over the
DevTools protocol: ``tests/support/browser.py``), traffic sent while the page is open, and the
numbers read back from the page's own text until they change.

``make test`` installs chromium (``scripts/ensure-chromium``) where it can; elsewhere this
test is skipped and says why. ``PROPYLON_DASHBOARD_SCREENSHOT=1`` also writes the screenshot
to ``docs/images/dashboard.png`` (every run writes one under the test's temporary directory).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.browser import CHROMIUM, MISSING, Page, chromium_page
from tests.support.client import request
from tests.support.processes import gateway_process, ocelot_file
from tests.support.upstreams import RecordingUpstream, free_port

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=MISSING)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "a-dashboard-token-long-enough-0123456789"
SHADY = "<img src=x onerror=document.title='owned'> fragile"
"""A route name (Ocelot ``Key``) that would run script if the page used innerHTML."""

READ = """
(() => {
  if (!document.getElementById("status")) return null;  // still loading
  const rows = (id, key) => Object.fromEntries([...document.querySelectorAll(`#${id} tr`)].map(
    (tr) => [tr.dataset[key], Object.fromEntries([...tr.children].map(
      (td) => [td.dataset.field, {text: td.textContent, state: td.dataset.state || null}]))]));
  return {
    status: document.getElementById("status").textContent,
    rate: document.getElementById("total-rate").textContent,
    requests: document.getElementById("total-requests").textContent,
    workers: document.getElementById("workers").textContent,
    reload: document.getElementById("last-reload").textContent,
    routes: rows("routes", "source"),
    upstreams: rows("upstreams", "upstream"),
    hash: location.hash,
    title: document.title,
    images: document.querySelectorAll("img").length,
  };
})()
"""


async def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the admin listener never became ready")


async def _until(page: Page, done: Any, what: str, timeout: float = 15) -> dict[str, Any]:
    """Read the page until ``done(seen)`` holds (the page polls every second)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = await page.evaluate(READ)
        try:
            if seen is not None and done(seen):
                return seen
        except (KeyError, TypeError, ValueError):
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"the page never showed {what}: {seen}")


def _number(text: str) -> float:
    return float(text.split()[0])


async def test_the_page_shows_live_numbers_from_both_workers(tmp_path: Path) -> None:
    upstream = await RecordingUpstream().start()
    dead = free_port()  # nothing listens here: the breaker's route fails
    port, admin = free_port(), free_port()
    config = ocelot_file(
        tmp_path,
        upstream.port,
        {
            "UpstreamPathTemplate": "/limited/{everything}",
            "DownstreamPathTemplate": "/{everything}",
            "DownstreamScheme": "http",
            "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": upstream.port}],
            "RateLimitOptions": {
                "EnableRateLimiting": True,
                "Period": "1m",
                "PeriodTimespan": 60,
                "Limit": 2,
            },
        },
        {
            "UpstreamPathTemplate": "/fragile/{everything}",
            "DownstreamPathTemplate": "/{everything}",
            "DownstreamScheme": "http",
            "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": dead}],
            "QoSOptions": {"ExceptionsAllowedBeforeBreaking": 2, "DurationOfBreak": 60000},
        },
    )
    env = {"PROPYLON_ADMIN_TOKEN": TOKEN}
    args = ("--admin", f"127.0.0.1:{admin}")
    try:
        with gateway_process(config, port, workers=2, env=env, args=args) as proc:
            await _wait_ready(admin)
            async with chromium_page() as page:
                # The token travels in the fragment, which the browser never sends.
                await page.goto(f"http://127.0.0.1:{admin}/#token={TOKEN}")
                first = await _until(
                    page,
                    lambda s: s["status"].startswith("Ready") and len(s["routes"]) == 3,
                    "the three routes",
                )
                assert first["hash"] == ""  # taken out of the address bar
                assert first["workers"] == "2 of 2"
                assert first["reload"] == "none since start"
                plain = first["routes"]["Routes[0]"]
                assert plain["requests"]["text"] == "0"
                assert plain["route"]["text"] == "* /api/{everything}"
                assert first["routes"]["Routes[2]"]["circuit"]["state"] == "closed"

                for _ in range(40):
                    assert (await request(port, "GET", "/api/things")).status == 200
                limited = [
                    (await request(port, "GET", "/limited/x", headers=[("Oc-Client", "ci")])).status
                    for _ in range(5)
                ]
                assert limited == [200, 200, 429, 429, 429]
                fragile = [(await request(port, "GET", "/fragile/x")).status for _ in range(6)]
                assert 502 in fragile and 503 in fragile

                seen = await _until(
                    page,
                    lambda s: (
                        s["routes"]["Routes[0]"]["requests"]["text"] == "40"
                        and _number(s["routes"]["Routes[0]"]["rate"]["text"]) > 0
                        and s["routes"]["Routes[1]"]["rate-limit"]["text"].startswith("3 ")
                        and s["routes"]["Routes[2]"]["circuit"]["state"] == "open"
                    ),
                    "the traffic",
                )
                plain = seen["routes"]["Routes[0]"]
                assert plain["p50"]["text"].endswith(" ms") and plain["p99"]["text"].endswith(" ms")
                assert plain["errors"]["text"] == "0.0 %"
                assert plain["mix"]["text"].startswith("2xx 100 %")
                assert _number(seen["rate"]) > 0 and int(seen["requests"]) >= 51
                assert seen["routes"]["Routes[0]"]["rate-limit"]["text"] == "none"
                fragile = seen["routes"]["Routes[2]"]["circuit"]["text"]
                assert fragile.startswith("open on ") and "/2 workers, opened " in fragile
                ups = seen["upstreams"]
                assert int(ups[f"127.0.0.1:{upstream.port}"]["requests"]["text"]) == 42
                assert int(ups[f"127.0.0.1:{dead}"]["errors"]["text"]) >= 2
                assert ups[f"127.0.0.1:{upstream.port}"]["health"]["text"] == "up"

                # With no more traffic the window's rate falls back to zero.
                await _until(
                    page,
                    lambda s: s["routes"]["Routes[0]"]["rate"]["text"] == "0.00 /s",
                    "the rate falling back",
                    timeout=20,
                )
                # Traffic again, to have numbers in the picture.
                for n in range(30):
                    await request(port, "GET", f"/api/more/{n}")
                    await request(port, "GET", "/limited/y", headers=[("Oc-Client", "ci")])
                await _until(
                    page,
                    lambda s: _number(s["routes"]["Routes[1]"]["rate"]["text"]) > 0,
                    "the second burst",
                )
                png = await page.screenshot()
            assert png.startswith(b"\x89PNG")
            (tmp_path / "dashboard.png").write_bytes(png)
            if os.environ.get("PROPYLON_DASHBOARD_SCREENSHOT") == "1":
                shutil.copy(tmp_path / "dashboard.png", ROOT / "docs" / "images" / "dashboard.png")
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 15) == 0
    finally:
        await upstream.close()


async def test_without_the_token_the_page_asks_for_it_and_shows_names_as_text(
    tmp_path: Path,
) -> None:
    upstream = await RecordingUpstream().start()
    port, admin = free_port(), free_port()
    env = {"PROPYLON_ADMIN_TOKEN": TOKEN}
    args = ("--admin", f"127.0.0.1:{admin}")
    shady = {
        "Key": SHADY,
        "UpstreamPathTemplate": "/shady",
        "DownstreamPathTemplate": "/",
        "DownstreamScheme": "http",
        "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": upstream.port}],
    }
    config = ocelot_file(tmp_path, upstream.port, shady)
    try:
        with gateway_process(config, port, 1, env=env, args=args):
            await _wait_ready(admin)
            async with chromium_page() as page:
                await page.goto(f"http://127.0.0.1:{admin}/")
                asked = await _until(page, lambda s: s["status"] == "A token is needed.", "a form")
                assert asked["routes"] == {}  # no numbers without the token
                assert await page.evaluate("document.getElementById('token-form').hidden") is False
                await page.evaluate(
                    f"document.getElementById('token').value = {TOKEN!r};"
                    "document.getElementById('token-form').requestSubmit()"
                )
                seen = await _until(page, lambda s: s["status"].startswith("Ready"), "the numbers")
                assert await page.evaluate("document.getElementById('token-form').hidden") is True
                assert seen["routes"]["Routes[1]"]["route"]["text"] == SHADY  # text, never run
                assert seen["images"] == 0 and seen["title"] == "propylon dashboard"
    finally:
        await upstream.close()
