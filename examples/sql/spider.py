"""Reading the Spider layout: questions JSON + ``tables.json`` + ``database/<db_id>/<db_id>.sqlite``.

    spider/
      tables.json            one entry per database: db_id, table_names_original, column_names_original
                             ([table index, name], the first is [-1, "*"]), column_types, primary_keys,
                             foreign_keys ([column index, referenced column index]), table_names, column_names
      train_spider.json      questions: db_id, question, query (gold SQL), question_toks, query_toks, sql, ...
      dev.json
      database/<db_id>/<db_id>.sqlite
      (Spider's test release: test.json + test_tables.json + test_database/)

Each question becomes one task, a JSON-serialisable dict the agent runs on:
``{"db_id", "question", "query", "db_path", "schema"}`` where ``schema`` is a compact ``CREATE TABLE``
rendering of the database (short enough for a small model's prompt) and ``db_path`` is absolute.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Union

PathLike = Union[str, Path]
DEFAULT_SPLIT = "dev.json"


def render_schema(entry: dict[str, Any]) -> str:
    """``CREATE TABLE t (col type, ...);`` per table from one ``tables.json`` entry, with foreign keys."""
    tables = entry["table_names_original"]
    columns = entry["column_names_original"]
    types = entry.get("column_types") or ["text"] * len(columns)
    primary = set(_flat(entry.get("primary_keys") or ()))
    references: dict[int, int] = {}
    for pair in entry.get("foreign_keys") or ():
        if len(pair) == 2:
            references[int(pair[0])] = int(pair[1])
    lines = []
    for t, table in enumerate(tables):
        parts = []
        for c, (owner, name) in enumerate(columns):
            if owner != t:
                continue
            part = f"{name} {types[c] if c < len(types) else 'text'}"
            if c in primary:
                part += " primary key"
            if c in references:
                ref_table, ref_name = columns[references[c]]
                part += f" references {tables[ref_table]}({ref_name})"
            parts.append(part)
        lines.append(f"CREATE TABLE {table} ({', '.join(parts)});")
    return "\n".join(lines)


def _flat(values: Any) -> list[int]:
    """Primary keys are column indices; newer releases list composite keys as nested lists."""
    out: list[int] = []
    for v in values:
        out.extend(_flat(v) if isinstance(v, (list, tuple)) else [int(v)])
    return out


def _locate(questions: Path, tables: Optional[PathLike], database: Optional[PathLike]) -> tuple[Path, Path]:
    root = questions.parent
    test_split = questions.name.startswith("test")
    if tables is None:
        tables = root / "test_tables.json" if test_split and (root / "test_tables.json").is_file() \
            else root / "tables.json"
    if database is None:
        database = root / "test_database" if test_split and (root / "test_database").is_dir() \
            else root / "database"
    return Path(tables), Path(database)


def load_tables(path: PathLike) -> dict[str, dict[str, Any]]:
    """``tables.json`` as ``{db_id: entry}``."""
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    return {entry["db_id"]: entry for entry in entries}


def load_spider(path: PathLike, *, tables: Optional[PathLike] = None, database: Optional[PathLike] = None,
                limit: Optional[int] = None) -> list[dict[str, Any]]:
    """Tasks from a Spider questions file (or a Spider directory: its ``dev.json``).

    ``tables.json`` and ``database/`` are found next to the questions file unless given. A question
    whose database is missing from either raises (a wrong path should be loud, not a silent 0 reward).
    """
    questions_path = Path(path)
    if questions_path.is_dir():
        questions_path = questions_path / DEFAULT_SPLIT
    if not questions_path.is_file():
        raise FileNotFoundError(f"no Spider questions file at {questions_path}")
    tables_path, database_dir = _locate(questions_path, tables, database)
    schemas = load_tables(tables_path)
    with open(questions_path, encoding="utf-8") as f:
        questions = json.load(f)
    rendered: dict[str, str] = {}
    tasks = []
    for item in questions[:limit] if limit is not None else questions:
        db_id = item["db_id"]
        if db_id not in schemas:
            raise KeyError(f"database {db_id!r} is not described in {tables_path}")
        db_path = database_dir / db_id / f"{db_id}.sqlite"
        if not db_path.is_file():
            raise FileNotFoundError(f"no SQLite file for {db_id!r} at {db_path}")
        if db_id not in rendered:
            rendered[db_id] = render_schema(schemas[db_id])
        tasks.append({"db_id": db_id, "question": item["question"], "query": item["query"],
                      "db_path": str(db_path.resolve()), "schema": rendered[db_id]})
    return tasks
