"""CORS as a browser enforces it: Debian's chromium, headless, loads a page from one
loopback origin, which calls the gateway on another port with fetch (with and without
credentials, simple and preflighted, from an allowed and from a refused origin) and writes
what it could read into the page; the test reads the page back (``--dump-dom``).

``make test`` installs chromium (``scripts/ensure-chromium``) where it can; elsewhere this
test is skipped and says why.
"""

from __future__ import annotations

import asyncio
import html
import json
import shutil
import tempfile
from typing import Any

import pytest
from aiohttp import web

from propylon.config.model import AuthRequirement, CorsPolicy
from tests.support.gateway import config, route, running
from tests.support.upstreams import RecordingUpstream

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (make test installs Debian's chromium when run as root)",
)

SCRIPT = """
const cases = JSON.parse(document.getElementById("cases").textContent);
async function probe(c) {
  try {
    const r = await fetch(c.url, c.init);
    const body = await r.text();
    return {outcome: "read", status: r.status, body: body.slice(0, 300),
            requestId: r.headers.get("X-Request-Id")};
  } catch (e) {
    return {outcome: "blocked", error: String(e)};
  }
}
(async () => {
  const results = {};
  for (const c of cases) { results[c.name] = await probe(c); }
  document.getElementById("out").textContent = JSON.stringify(results);
})();
"""


def page(cases: list[dict[str, Any]]) -> str:
    # a script element's text is not HTML-decoded: only "</" must not appear in it
    data = json.dumps(cases).replace("</", "<\\/")
    return (
        "<!doctype html><html><body>"
        f'<script type="application/json" id="cases">{data}</script>'
        '<pre id="out">pending</pre>'
        f"<script>{SCRIPT}</script></body></html>"
    )


async def serve_page(body: dict[str, str]) -> tuple[web.AppRunner, int]:
    """A page server; ``body["html"]`` is filled in once the gateway's port is known."""

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=body["html"], content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    return runner, int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]


async def browse(url: str) -> dict[str, dict[str, Any]]:
    """Load ``url`` in headless chromium and return what the page wrote."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 90)
    dom = out.decode()
    start = dom.index('<pre id="out">') + len('<pre id="out">')
    text = html.unescape(dom[start : dom.index("</pre>", start)])
    assert text != "pending", "the page's fetches did not finish within the time budget"
    result: dict[str, dict[str, Any]] = json.loads(text)
    return result


def cases(gateway: str) -> list[dict[str, Any]]:
    json_put = {
        "method": "PUT",
        "headers": {"Content-Type": "application/json"},
        "body": '{"name": "x"}',
    }
    return [
        {"name": "simple", "url": f"{gateway}/plain", "init": {}},
        {
            "name": "simple with credentials",
            "url": f"{gateway}/plain",
            "init": {"credentials": "include"},
        },
        {"name": "credentialed", "url": f"{gateway}/cred", "init": {"credentials": "include"}},
        {"name": "star", "url": f"{gateway}/star", "init": {}},
        {
            "name": "star with credentials",
            "url": f"{gateway}/star",
            "init": {"credentials": "include"},
        },
        {"name": "preflighted put", "url": f"{gateway}/put", "init": json_put},
        {
            "name": "preflight with a header not allowed",
            "url": f"{gateway}/put",
            "init": {"method": "PUT", "headers": {"X-Debug": "1"}},
        },
        {"name": "gateway 401", "url": f"{gateway}/secure", "init": {"credentials": "include"}},
    ]


async def test_a_browser_reads_only_what_the_policy_allows() -> None:
    up = await RecordingUpstream().start()
    app_page: dict[str, str] = {"html": ""}
    other_page: dict[str, str] = {"html": ""}
    app_runner, app_port = await serve_page(app_page)
    other_runner, other_port = await serve_page(other_page)
    app_origin = f"http://127.0.0.1:{app_port}"
    try:
        only_app = CorsPolicy(origins=(app_origin,))
        cfg = config(
            route("/plain", up.port, cors=only_app),
            route(
                "/cred",
                up.port,
                cors=CorsPolicy(
                    origins=(app_origin,), credentials=True, expose_headers=("X-Request-Id",)
                ),
            ),
            route("/star", up.port, cors=CorsPolicy(origins=("*",))),
            route(
                "/put",
                up.port,
                methods=("PUT", "OPTIONS"),
                cors=CorsPolicy(
                    origins=(app_origin,), methods=("PUT",), route_methods=frozenset({"PUT"})
                ),
            ),
            route(
                "/secure",
                up.port,
                auth=AuthRequirement(providers=("Bearer",)),
                cors=CorsPolicy(origins=(app_origin,), credentials=True),
            ),
        )
        async with running(cfg) as gw:
            gateway = f"http://127.0.0.1:{gw.port}"
            app_page["html"] = page(cases(gateway))
            other_page["html"] = page(cases(gateway))

            seen = await browse(f"{app_origin}/")
            outcomes = {name: r["outcome"] for name, r in seen.items()}
            assert outcomes == {
                "simple": "read",
                "simple with credentials": "blocked",  # no Allow-Credentials on /plain
                "credentialed": "read",
                "star": "read",
                "star with credentials": "blocked",  # "*" never goes with credentials
                "preflighted put": "read",
                "preflight with a header not allowed": "blocked",
                "gateway 401": "read",
            }, seen
            assert seen["simple"]["status"] == 200
            assert seen["simple"]["requestId"] is None  # not exposed on /plain
            assert seen["credentialed"]["requestId"]  # exposed on /cred
            assert seen["preflighted put"]["status"] == 200
            assert seen["gateway 401"]["status"] == 401
            assert json.loads(seen["gateway 401"]["body"])["codemessage"] == "Unauthorized"
            puts = [s for s in up.seen if s.method == "PUT"]
            assert len(puts) == 1 and puts[0].header("Origin") == app_origin
            assert not [s for s in up.seen if s.method == "OPTIONS"]  # preflights stay here

            before = len(up.seen)
            seen = await browse(f"http://127.0.0.1:{other_port}/")
            outcomes = {name: r["outcome"] for name, r in seen.items()}
            assert outcomes == {
                "simple": "blocked",
                "simple with credentials": "blocked",
                "credentialed": "blocked",
                "star": "read",
                "star with credentials": "blocked",
                "preflighted put": "blocked",
                "preflight with a header not allowed": "blocked",
                "gateway 401": "blocked",
            }, seen
            # a refused preflight means the browser never sent the PUT at all
            assert not [s for s in up.seen[before:] if s.method == "PUT"]
    finally:
        await app_runner.cleanup()
        await other_runner.cleanup()
        await up.close()
