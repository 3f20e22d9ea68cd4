"""The attack suite's fixtures: clients from their own addresses, and a cast of two users and an admin."""

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import auth, register, register_admin

_addresses = itertools.count(1)


def client_from_own_address(app: FastAPI) -> httpx.AsyncClient:
    """An ASGI client whose requests come from an address no other test uses.

    Attacks fail logins and hammer routes on purpose: per-IP lockouts and rate limits they trip
    must not spill over to the tests that run after them on the shared app.
    """
    n = next(_addresses)
    address = f"198.18.{n // 250}.{n % 250 + 1}"  # RFC 2544 benchmarking range: never a real client
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_from_own_address(app) as c:
        yield c


@dataclass
class Person:
    email: str
    id: str
    headers: dict[str, str]  # just the Authorization header


async def person(client: httpx.AsyncClient) -> Person:
    headers = await register(client)
    me = await client.get("/api/v1/auth/me", headers=auth(headers))
    assert me.status_code == 200, me.text
    return Person(email=headers["email"], id=str(me.json()["id"]), headers=auth(headers))


async def admin_person(app: FastAPI, client: httpx.AsyncClient) -> Person:
    headers = await register_admin(app, client)
    return Person(email=headers["email"], id=headers["id"], headers=auth(headers))


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Person:
    return await person(client)


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> Person:
    return await person(client)


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> Person:
    return await admin_person(app, client)
