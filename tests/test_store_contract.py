"""Run the Store contract (tests/store_contract.py) against SQLite and PostgreSQL, plus what only
PostgreSQL can get wrong: losing its connections."""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Iterator

import pytest

from agentlightning.core.store import Store, StoreUnavailable, open_store
from pg_fixtures import pg_server_url, pg_url  # noqa: F401 (fixtures)
from store_contract import *  # noqa: F401,F403 (the contract's tests)
from store_contract import _records


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "contract.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def _opened() -> Iterator[list[Store]]:
    stores: list[Store] = []
    yield stores
    for s in stores:
        s.close()


@pytest.fixture
def open_store_again(store_url: str, _opened: list[Store]):
    def again() -> Store:
        s = open_store(store_url)
        _opened.append(s)
        return s
    return again


@pytest.fixture
def store(open_store_again) -> Store:
    return open_store_again()


def test_postgres_connection_loss_is_unavailable_then_recovers(pg_url: str):
    import psycopg

    store = open_store(pg_url)
    try:
        store.insert_spans(_records("before", 3))
        with psycopg.connect(pg_url, autocommit=True) as admin:  # what a server restart does to us
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        failures = 0
        for _ in range(3):
            try:
                store.insert_spans(_records("after", 2))
            except StoreUnavailable as exc:
                failures += 1
                assert "database cannot be written" in str(exc)
        assert failures <= 1  # one dead connection found, the rest of the pool dropped with it
        assert len(store.get_spans("before")) == 3 and len(store.get_spans("after")) == 2 * (3 - failures)
    finally:
        store.close()


def test_postgres_unreachable_is_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(StoreUnavailable, match="cannot connect to PostgreSQL"):
        open_store(f"postgresql://nobody:x@127.0.0.1:{port}/none", connect_timeout_s=2)
