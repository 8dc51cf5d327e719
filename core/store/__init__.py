"""Durable stores behind one interface: SQLite embedded by default."""
from agentlightning.core.store.base import (
    AttemptNotActive,
    NotFound,
    Store,
    StoreError,
    StoreUnavailable,
    SpanRecord,
)


def open_store(url: str) -> Store:
    """Open a store from a path or URL: ``file.db`` / ``sqlite:///file.db`` (PostgreSQL: later)."""
    if url.startswith(("postgresql://", "postgres://")):
        raise StoreError("PostgreSQL store is not available in this version; use a SQLite path")
    from agentlightning.core.store.sqlite import SqliteStore

    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    return SqliteStore(path)


__all__ = ["Store", "StoreError", "StoreUnavailable", "NotFound", "AttemptNotActive", "SpanRecord", "open_store"]
