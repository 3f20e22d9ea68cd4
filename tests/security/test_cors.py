"""CORS: the origins come from settings, and no configuration grants credentials to every origin."""

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from app.main import create_app
from tests.conftest import make_settings

ALLOWED = "https://app.example.com"
OTHERS = [
    "https://evil.example",
    "https://app.example.com.evil.example",  # the allowed origin as a prefix
    "https://evil-app.example.com",
    "https://sub.app.example.com",
    "http://app.example.com",  # the same host without TLS
    "https://app.example.com:8443",
    "null",  # sandboxed iframes and file:// pages
]
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


def cors_client(app: FastAPI) -> httpx.AsyncClient:
    # CORS is middleware: no lifespan (database, model) is needed for its headers on /health and preflights.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def responses_for(app: FastAPI, origin: str) -> list[httpx.Response]:
    async with cors_client(app) as c:
        return [
            await c.get("/health", headers={"Origin": origin}),
            await c.options("/api/v1/sessions", headers={"Origin": origin, **PREFLIGHT}),
        ]


def grants_credentials(r: httpx.Response, origin: str) -> bool:
    allow_origin = r.headers.get("access-control-allow-origin")
    credentials = r.headers.get("access-control-allow-credentials") == "true"
    return credentials and allow_origin in ("*", origin)


async def test_an_allowed_origin_gets_its_echo_and_credentials(pg_url, fake_llm):
    app = create_app(make_settings(pg_url, fake_llm, cors_origins=[ALLOWED]))
    simple, preflight = await responses_for(app, ALLOWED)
    for r in (simple, preflight):
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == ALLOWED
        assert r.headers["access-control-allow-credentials"] == "true"
        assert "origin" in r.headers["vary"].lower()  # caches must not serve one origin's answer to another
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()


@pytest.mark.parametrize("origin", OTHERS)
async def test_any_other_origin_gets_no_allow_origin(pg_url, fake_llm, origin):
    app = create_app(make_settings(pg_url, fake_llm, cors_origins=[ALLOWED]))
    for r in await responses_for(app, origin):
        assert "access-control-allow-origin" not in r.headers, (r.request.method, dict(r.headers))
        assert not grants_credentials(r, origin)


async def test_without_configured_origins_nobody_gets_cors_headers(app):
    assert app.state.settings.cors_origins == []
    for origin in [ALLOWED, *OTHERS]:
        for r in await responses_for(app, origin):
            assert "access-control-allow-origin" not in r.headers, dict(r.headers)


async def test_the_origins_are_read_from_the_environment(pg_url, fake_llm, monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", '["https://one.example", "https://two.example:8443"]')
    settings = make_settings(pg_url, fake_llm)
    assert settings.cors_origins == ["https://one.example", "https://two.example:8443"]
    app = create_app(settings)
    for origin in settings.cors_origins:
        for r in await responses_for(app, origin):
            assert r.headers["access-control-allow-origin"] == origin
    for r in await responses_for(app, ALLOWED):
        assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("origins", [["*"], [ALLOWED, "*"]])
async def test_a_wildcard_never_comes_with_credentials(pg_url, fake_llm, origins):
    """Refused when configured, or at least never answered as "any origin, with credentials".

    Echoing an arbitrary Origin together with Allow-Credentials is the same hole as `*` with credentials.
    """
    try:
        settings = make_settings(pg_url, fake_llm, cors_origins=origins)
    except ValidationError as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert "cors_origins" in refusal.lower(), refusal
        return
    app = create_app(settings)
    for origin in OTHERS:
        for r in await responses_for(app, origin):
            assert not grants_credentials(r, origin), (origin, r.request.method, dict(r.headers))


async def test_the_allowed_origin_may_put(pg_url, fake_llm):
    # The admin quota route is a PUT: a browser preflights it.
    app = create_app(make_settings(pg_url, fake_llm, cors_origins=[ALLOWED]))
    async with cors_client(app) as c:
        r = await c.options(
            "/api/v1/admin/users/00000000-0000-0000-0000-000000000000/quota",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
    assert r.status_code == 200
    assert "PUT" in r.headers["access-control-allow-methods"]
