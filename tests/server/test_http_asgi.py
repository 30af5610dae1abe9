"""ServerSettings(http="asgi"): hypercorn + quart-trio for TLS, HTTP/2 and ASGI middleware, same routes."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from importlib.metadata import version

import pytest

from runtime.server import ServerSettings

from .conftest import client, running
from .test_http_routes import make_app


def test_the_installed_hypercorn_is_the_version_pyproject_pins():
    major, minor = (int(part) for part in version("hypercorn").split(".")[:2])
    assert (major, minor) == (0, 18)  # pyproject.toml: hypercorn>=0.18,<0.19, the one tested here


async def test_step_routes_statuses_and_trace_ids_under_asgi():
    async with running(make_app(), http="asgi") as (url, _):
        async with client(url) as c:
            created = await c.post("/todos", json={"id": "a", "title": "milk"})
            assert created.status_code == 201 and created.json() == {"id": "a", "title": "milk"}
            assert (await c.post("/todos", json={"title": 7})).status_code == 400
            assert (await c.get("/nowhere")).status_code == 404
            health = await c.get("/health", headers={"X-Trace-Id": "mine"})
            assert health.json() == {"status": "ok"} and health.headers["x-trace-id"] == "mine"
            assert "server" not in health.headers  # claims to be no other server


async def test_asgi_middleware_wraps_the_app():
    def middleware(app):
        async def wrapped(scope, receive, send):
            async def tagged(message):
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message["headers"], (b"x-mounted", b"yes")]}
                await send(message)

            await app(scope, receive, tagged if scope["type"] == "http" else send)

        return wrapped

    async with running(make_app(), http="asgi", asgi_middleware=middleware) as (url, _):
        async with client(url) as c:
            assert (await c.get("/health")).headers["x-mounted"] == "yes"


def test_tls_and_middleware_need_asgi():
    with pytest.raises(ValueError, match="http='asgi'"):
        ServerSettings(tls_certfile="cert.pem")
    with pytest.raises(ValueError, match="'fast' or 'asgi'"):
        ServerSettings(http="h3")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
async def test_tls_under_asgi(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    async with running(make_app(), http="asgi", tls_certfile=str(cert), tls_keyfile=str(key)) as (url, _):
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        async with client(url.replace("http://", "https://"), verify=context) as c:
            assert (await c.get("/health")).json() == {"status": "ok"}
