"""One running stack per database backend for the whole e2e session, and a client per test.

The PostgreSQL variant runs when PROPYLON_TEST_POSTGRES_URL names a server where fresh
databases may be created (they are dropped afterwards); otherwise it is skipped, saying so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator

import aiohttp
import pytest

from tests.e2e.api import Account, GatewayApi
from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USERNAME, RunningStack, running_stack
from tests.services.databases import BACKENDS


@pytest.fixture(scope="session", params=BACKENDS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    backend = str(request.param)
    with running_stack(backend, tmp_path_factory.mktemp(f"e2e-{backend}")) as running:
        yield running


@pytest.fixture
async def api(stack: RunningStack) -> AsyncIterator[GatewayApi]:
    async with aiohttp.ClientSession() as session:
        yield GatewayApi(session, stack.gateway_url)


@pytest.fixture
async def admin(api: GatewayApi) -> Account:
    """The administrator the identity service creates at start-up, logged in."""
    return await api.log_in(ADMIN_USERNAME, ADMIN_PASSWORD)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # A failure through the gateway is often explained by what a service logged.
    report = yield
    running = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(running, RunningStack):
        report.sections.append((f"stack output ({running.backend})", running.output()))
    return report
