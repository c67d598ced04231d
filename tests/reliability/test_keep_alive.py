"""The real gateway process keeps an idle connection open longer than a pooled client does
(httpx drops one after 5 s idle), so the client closes it first. Were the gateway to close it at
the same moment (uvicorn's default is also 5 s), a request sent on it then is reset unanswered:
the likely cause of the `httpx.ReadError` the 1,000-submission load test once met in CI."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlparse

import httpx
import pytest

from tests.fixtures.reliability import ApiGateway

pytestmark = [pytest.mark.slow]


def test_an_idle_connection_outlives_a_pooled_clients_expiry(api_gateway: ApiGateway) -> None:
    url = urlparse(api_gateway.base)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        first.read()
        assert first.status == 200
        local = conn.sock.getsockname()
        time.sleep(httpx.Limits().keepalive_expiry + 1)
        # The same socket: http.client opens a new one only once the old is set aside.
        conn.request("GET", "/healthz")
        assert conn.sock.getsockname() == local
        second = conn.getresponse()  # RemoteDisconnected had the gateway closed it
        second.read()
        assert second.status == 200
    finally:
        conn.close()
