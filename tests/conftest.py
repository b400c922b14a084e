"""Shared fixtures: databases for the store contract suite.

PostgreSQL is the real server on 127.0.0.1:5432 (database `test`). Each test gets a schema
of its own, dropped afterwards. With CI=true an unreachable server fails the test; elsewhere
the test skips with a one-line reason.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BASE = os.environ.get("MONITOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_BASE.replace("+psycopg", ""), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL at 127.0.0.1:5432 not reachable: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_available() -> None:
    reason = _pg_reachable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def pg_url(pg_available: None) -> Iterator[str]:
    """A URL whose connections see only a fresh schema of their own."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    plain = PG_BASE.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_BASE else "?"
    yield f"{PG_BASE}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """One fixture, both backends: the contract suite runs against each."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


from tests.feedserver import feed_server  # noqa: F401  (fixture for every module)
from tests.receivers import SmtpServer, WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"test-secret-for-the-receiver-32b").decode()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver verifying signatures made with SECRET."""
    with WebhookReceiver(SECRET) as r:
        yield r


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A plain aiosmtpd server on 127.0.0.1."""
    with SmtpServer() as s:
        yield s
