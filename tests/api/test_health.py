"""Liveness and readiness."""

import pytest


@pytest.mark.parametrize("prefix", ["", "/api/v1"])
async def test_health_and_ready(client, prefix):
    assert (await client.get(f"{prefix}/health")).json() == {"status": "ok"}
    r = await client.get(f"{prefix}/ready")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"


async def test_ready_fails_when_schema_is_behind(app, client):
    db = app.state.runtime.db
    expected = db.schema_head
    db.schema_head = "9999_future"
    try:
        r = await client.get("/ready")
    finally:
        db.schema_head = expected
    assert r.status_code == 503
    assert r.json()["error"] == "not_ready"
    assert "9999_future" in r.json()["detail"]
    assert (await client.get("/ready")).status_code == 200


async def test_unknown_route_and_wrong_method_use_the_error_shape(client):
    r = await client.get("/api/v1/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await client.put("/api/v1/sessions")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
