"""Running SQL on a task's SQLite database safely, and the execution-match reward.

Queries run on a read-only connection (``mode=ro``), so a generated ``DROP TABLE`` cannot change the
data, with a wall-clock budget (a progress handler aborts runaway cross joins) and a row cap.

Execution match (the reward) compares what the predicted and the gold query return on the task's
database, the way Spider's execution accuracy does:

* a prediction that fails (syntax error, unknown column, timeout, too many rows) or is empty scores 0;
* column names and aliases do not matter, and neither does the order of the columns: the prediction
  matches when some permutation of its columns gives the gold rows (columns are paired by their
  value multisets first, so this stays cheap);
* row order matters only when the gold query's outermost SELECT has ``ORDER BY``; otherwise rows are
  compared as multisets (duplicates count);
* numbers compare by value (``2 == 2.0``); floats are rounded to 6 decimals.
"""
from __future__ import annotations

import itertools
import re
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

TIMEOUT_S = 2.0
MAX_ROWS = 10_000
_MAX_PERMUTATIONS = 5_000

Row = tuple


class QueryError(Exception):
    """The query could not be run (its message is what the agent shows the model)."""


class QueryTimeout(QueryError, TimeoutError):
    """The query ran past its time budget (a ``TimeoutError``, so tracers report a timeout)."""


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[Row]


def run_query(db_path: Union[str, Path], sql: str, *, timeout_s: float = TIMEOUT_S,
              max_rows: int = MAX_ROWS) -> QueryResult:
    """Run one statement read-only; raise :class:`QueryError` with a short message on any failure."""
    sql = (sql or "").strip().rstrip(";").strip()
    if not sql:
        raise QueryError("empty query")
    path = Path(db_path)
    if not path.is_file():
        raise QueryError(f"no database at {path}")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise QueryError(str(exc)) from None
    deadline = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        cursor = conn.execute(sql)
        rows = cursor.fetchmany(max_rows + 1)
        columns = tuple(d[0] for d in cursor.description or ())
    except sqlite3.OperationalError as exc:
        if str(exc) == "interrupted":
            raise QueryTimeout(f"query timed out after {timeout_s:g} s") from None
        raise QueryError(str(exc)) from None
    except (sqlite3.Error, sqlite3.Warning, ValueError, OverflowError) as exc:  # e.g. two statements
        raise QueryError(str(exc) or type(exc).__name__) from None
    finally:
        conn.close()
    if len(rows) > max_rows:
        raise QueryError(f"more than {max_rows} rows")
    return QueryResult(columns, [tuple(r) for r in rows])


def _norm(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) + 0.0  # -0.0 -> 0.0
    return value


def _normalise(rows: list[Row]) -> list[Row]:
    return [tuple(_norm(v) for v in row) for row in rows]


_STRINGS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def has_top_level_order_by(sql: str) -> bool:
    """``ORDER BY`` outside string literals and parentheses (i.e. on the outermost SELECT)."""
    text = _STRINGS.sub("''", sql or "")
    depth, outer = 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            outer.append(ch)
    return re.search(r"\border\s+by\b", "".join(outer), re.IGNORECASE) is not None


def results_match(predicted: list[Row], gold: list[Row], ordered: bool) -> bool:
    """Do two result sets match up to a column permutation (and row order unless ``ordered``)?"""
    predicted, gold = _normalise(predicted), _normalise(gold)
    if len(predicted) != len(gold):
        return False
    if not gold:
        return True
    width = len(gold[0])
    if any(len(r) != width for r in predicted):
        return False
    # Pair columns by value multisets: a gold column can only come from a predicted column with the same
    # values (in any row order), which prunes the permutations to try.
    gold_cols = [Counter(r[j] for r in gold) for j in range(width)]
    pred_cols = [Counter(r[i] for r in predicted) for i in range(width)]
    candidates = [[i for i in range(width) if pred_cols[i] == gold_cols[j]] for j in range(width)]
    if any(not c for c in candidates):
        return False
    target = gold if ordered else Counter(gold)
    for perm in itertools.islice(_permutations(candidates), _MAX_PERMUTATIONS):
        moved = [tuple(r[i] for i in perm) for r in predicted]
        if (moved if ordered else Counter(moved)) == target:
            return True
    return False


def _permutations(candidates: list[list[int]]):
    for choice in itertools.product(*candidates):
        if len(set(choice)) == len(choice):
            yield choice


def execution_match(predicted_sql: Optional[str], gold_sql: str, db_path: Union[str, Path]) -> float:
    """1.0 when the predicted query returns what the gold query returns on ``db_path``, else 0.0."""
    if not predicted_sql or not predicted_sql.strip():
        return 0.0
    gold = run_query(db_path, gold_sql)  # a broken gold query is a data error: let it raise
    try:
        predicted = run_query(db_path, predicted_sql)
    except QueryError:
        return 0.0
    return 1.0 if results_match(predicted.rows, gold.rows, has_top_level_order_by(gold_sql)) else 0.0


def preview(result: QueryResult, max_rows: int = 5, max_chars: int = 300) -> str:
    """A short text rendering of a result for prompts: header, first rows, row count."""
    lines = [" | ".join(result.columns)]
    lines += [" | ".join("NULL" if v is None else str(v) for v in row) for row in result.rows[:max_rows]]
    if len(result.rows) > max_rows:
        lines.append(f"... ({len(result.rows)} rows)")
    elif not result.rows:
        lines.append("(no rows)")
    text = "\n".join(lines)
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."
