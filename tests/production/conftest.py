"""Fixtures for the production path: a separate PostgreSQL server reached only through DATABASE_URL."""

import contextlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.production.pgserver import ExternalPostgres


@pytest.fixture(scope="session")
def external_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExternalPostgres]:
    server = ExternalPostgres(Path(tmp_path_factory.mktemp("external-pg")) / "server")
    server.init()
    server.start()
    yield server
    # A test that failed half-way may have left it stopped; the directory goes with pytest's tmp.
    with contextlib.suppress(Exception):
        server.stop("immediate")


@dataclass(frozen=True)
class Provisioned:
    """A database handed over to the service: its URL, and who owns it."""

    url: str
    database: str
    role: str


def provision(server: ExternalPostgres, *, vector: bool) -> Provisioned:
    """A new non-superuser role owning a new database (with pgvector enabled by the superuser, or not)."""
    tag = uuid.uuid4().hex[:8]
    role, database, password = f"agent_{tag}", f"app_{tag}", secrets.token_hex(10)
    server.create_role(role, password)
    server.create_database(database, owner=role, vector=vector)
    return Provisioned(server.url(database, user=role, password=password), database, role)


@pytest.fixture
def managed_db(external_pg: ExternalPostgres) -> Provisioned:
    """How managed databases look: the role owns its database but is not a superuser, and an
    administrator enabled pgvector beforehand."""
    return provision(external_pg, vector=True)


@pytest.fixture
def managed_db_without_vector(external_pg: ExternalPostgres) -> Provisioned:
    return provision(external_pg, vector=False)


@pytest.fixture
def superuser_db(external_pg: ExternalPostgres) -> Provisioned:
    """A fresh database reached as the superuser: nothing created beforehand, pgvector included."""
    database = f"app_{uuid.uuid4().hex[:8]}"
    external_pg.create_database(database)
    return Provisioned(external_pg.url(database), database, "postgres")
