"""Durable stores behind one interface: SQLite embedded by default, PostgreSQL for several replicas."""
from agentlightning.core.store.base import (
    AttemptNotActive,
    NotFound,
    Store,
    StoreError,
    StoreUnavailable,
    SpanRecord,
)


def open_store(url: str, **options) -> Store:
    """Open a store from a path or URL: ``file.db`` / ``sqlite:///file.db`` / ``postgresql://...``
    (the last needs the ``postgres`` extra: psycopg 3). ``options`` go to the store's constructor."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from agentlightning.core.store.postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(f"PostgreSQL store needs psycopg 3: pip install 'agentlightning[postgres]' ({exc})") from None
        return PostgresStore(url, **options)
    from agentlightning.core.store.sqlite import SqliteStore

    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    return SqliteStore(path, **options)


def redact(url: str) -> str:
    """The store URL without its password, for logs and banners."""
    import re

    return re.sub(r"^(postgres(?:ql)?://[^:/@]*):[^@]*@", r"\1:***@", url)


__all__ = ["redact", "Store", "StoreError", "StoreUnavailable", "NotFound", "AttemptNotActive", "SpanRecord", "open_store"]
