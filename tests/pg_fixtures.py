"""PostgreSQL for tests: a real server on 127.0.0.1 and a fresh database per test.

The server's URL comes from AGENTLIGHTNING_TEST_PG (CI exports it from scripts/start_postgres.sh);
without it the fixture runs that script itself. No server means the tests FAIL, never skip: a store
contract that silently runs on one backend only proves nothing about the other.
Import the fixtures into a test module: ``from pg_fixtures import pg_server_url, pg_url``.
"""
from __future__ import annotations

import os
import subprocess
import time
import uuid
import warnings
from pathlib import Path
from typing import Iterator

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "start_postgres.sh"


def _start_server() -> str:
    try:
        done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"no PostgreSQL server: AGENTLIGHTNING_TEST_PG is unset and {SCRIPT.name} failed: {exc}")
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(f"no PostgreSQL server: AGENTLIGHTNING_TEST_PG is unset and {SCRIPT.name} failed "
                    f"(exit {done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of a database on a running server whose role may CREATE DATABASE."""
    try:
        import psycopg
    except ImportError as exc:
        pytest.fail(f"psycopg 3 is not installed (pip install 'agentlightning[postgres]'): {exc}")
    url = os.environ.get("AGENTLIGHTNING_TEST_PG") or _start_server()
    try:
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL at {url.split('@')[-1]} is not reachable: {exc}")
    return url


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A new, empty database for this test (dropped afterwards, connections and all)."""
    import psycopg

    name = f"al_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # name is ours (hex), not user input
    try:
        yield _with_database(pg_server_url, name)
    finally:
        _drop(pg_server_url, name)


def _drop(server_url: str, name: str) -> None:
    """Drop a test database. An autovacuum worker in it (which our role may not terminate) makes
    DROP fail for a moment: retry, and leave it behind rather than fail the test."""
    import psycopg

    for attempt in range(20):
        try:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.errors.InsufficientPrivilege:
            time.sleep(0.25)
        except psycopg.Error as exc:
            warnings.warn(f"could not drop test database {name}: {exc}")
            return
    warnings.warn(f"could not drop test database {name}: autovacuum kept it busy")
