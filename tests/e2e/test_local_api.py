"""The local webhook API answers like API Gateway (REST) where it has no route, and keeps up with bursts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import Driver

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("method", ["DELETE", "PATCH", "OPTIONS", "HEAD", "GET", "PUT"])
def test_methods_without_a_route_get_api_gateways_403_and_write_nothing(driver: Driver, method: str) -> None:
    before = driver.snapshot()
    response = driver.http.request(
        method, f"{driver.runtime.api.url}/webhooks/{driver.source}", content=b"{}"
    )
    assert response.status_code == 403  # they used to be 501 from the local server
    if method != "HEAD":
        assert response.json() == {"message": "Missing Authentication Token"}
    assert driver.snapshot() == before


def test_a_path_without_a_route_is_403(driver: Driver) -> None:
    response = driver.http.post(f"{driver.runtime.api.url}/hooks/{driver.source}", content=b"{}")
    assert (response.status_code, response.json()) == (403, {"message": "Missing Authentication Token"})


def test_a_burst_of_concurrent_senders_is_answered_not_reset(driver: Driver) -> None:
    """A listen backlog of 5 reset 2 of 602 connections under 16 senders; each sender here opens its own."""
    url = f"{driver.runtime.api.url}/webhooks/no-such-source"

    def send(_: int) -> int:
        with httpx.Client(timeout=30) as client:  # a fresh connection per request
            return client.post(url, content=b"{}", headers={"Content-Type": "application/json"}).status_code

    with ThreadPoolExecutor(max_workers=48) as pool:
        statuses = list(pool.map(send, range(96)))
    assert statuses == [404] * 96
