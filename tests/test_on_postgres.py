"""The gRPC-level suites again, with the server's store on PostgreSQL instead of SQLite.

Importing a test module's functions here makes pytest collect them a second time in this module,
where ``lightning_server`` (and so ``client``, ``exporter``, ``tracer``) is the PostgreSQL-backed
server below. Tests that open SQLite files by themselves are left out.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from agentlightning.core.server import LightningServer, ServerConfig
from agentlightning.core.store.postgres import PostgresStore
from pg_fixtures import pg_server_url, pg_url  # noqa: F401 (fixtures)
from test_rollouts import *  # noqa: F401,F403
from test_runner import *  # noqa: F401,F403
from test_ingest import (  # noqa: F401
    test_duplicates_inside_one_batch_are_stored_once,
    test_invalid_span_is_named_and_the_others_are_kept,
    test_joins_an_active_opentelemetry_trace,
    test_retried_batch_stores_nothing_twice,
    test_rollout_helper_and_reward_decorator,
    test_spans_outside_any_rollout_get_a_generated_live_rollout,
    test_undecodable_span_is_rejected_alone,
)
from test_outage import (  # noqa: F401
    test_corrupt_and_truncated_spool_records_are_skipped_and_named,
    test_spans_spooled_by_one_process_are_delivered_by_the_next,
)


@pytest.fixture
def lightning_server(pg_url: str) -> Iterator[LightningServer]:  # noqa: F811 (overrides conftest's)
    server = LightningServer(PostgresStore(pg_url, default_heartbeat_timeout_s=60.0), ServerConfig(port=0))
    server.start()
    try:
        yield server
    finally:
        server.stop(grace_s=1.0)


def test_this_module_really_runs_on_postgres(lightning_server: LightningServer):
    assert isinstance(lightning_server.store, PostgresStore)
