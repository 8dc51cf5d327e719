"""MuSiQue's JSONL format in, task inputs out (one JSON-serialisable dict per question).

The official files (``musique_ans_v1.0_{train,dev}.jsonl``, ``musique_full_v1.0_*.jsonl``) hold one JSON
object per line::

    {"id": "2hop__460946_294723",
     "paragraphs": [{"idx": 0, "title": "...", "paragraph_text": "...", "is_supporting": false}, ...],
     "question": "Who is the spouse of the Green performer?",
     "question_decomposition": [{"id": 460946, "question": "Green >> performer", "answer": "Steve Hillage",
                                 "paragraph_support_idx": 10},
                                {"id": 294723, "question": "#1 >> spouse", "answer": "Miquette Giraudy",
                                 "paragraph_support_idx": 5}],
     "answer": "Miquette Giraudy", "answer_aliases": [], "answerable": true}

A task keeps what the agent and the reward need: the question, the paragraphs (the agent's retrieval index
is built from them: MuSiQue's distractor setting), the answer with its aliases, and for reports the hop
count, the supporting paragraph ids and which of them each hop reads. ``task_id`` is the record's ``id``
(``agentlightning train`` groups rollouts by it). MuSiQue-Full's unanswerable records are skipped unless asked for; the test split,
which has no answers, is refused with a clear message.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator, Union

PathLike = Union[str, Path]
_HOPS = re.compile(r"^(\d+)hop")


class MusiqueFormatError(ValueError):
    """A record that is not in MuSiQue's format (the message names the file and line)."""


def iter_records(path: PathLike) -> Iterator[dict[str, Any]]:
    """Raw records from a ``.jsonl`` file, or from every ``*.jsonl`` in a directory (sorted by name)."""
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no *.jsonl files in {path}")
    for file in files:
        with open(file, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise MusiqueFormatError(f"{file}:{number}: not JSON ({exc})") from exc
                if not isinstance(record, dict):
                    raise MusiqueFormatError(f"{file}:{number}: expected a JSON object per line")
                record.setdefault("_where", f"{file}:{number}")
                yield record


def to_task(record: dict[str, Any]) -> dict[str, Any]:
    """One MuSiQue record as a task input (raises MusiqueFormatError naming what is missing)."""
    where = record.get("_where", record.get("id", "?"))
    for key in ("id", "question", "paragraphs"):
        if key not in record:
            raise MusiqueFormatError(f"{where}: missing {key!r}")
    if "answer" not in record:
        raise MusiqueFormatError(f"{where}: no 'answer' (MuSiQue's test split is unlabelled; use train or dev)")
    paragraphs = record["paragraphs"]
    if not isinstance(paragraphs, list) or not all(isinstance(p, dict) and "paragraph_text" in p
                                                   for p in paragraphs):
        raise MusiqueFormatError(f"{where}: 'paragraphs' must be a list of objects with 'paragraph_text'")
    decomposition = record.get("question_decomposition") or []
    hops = len(decomposition)
    if not hops:
        match = _HOPS.match(str(record["id"]))
        hops = int(match.group(1)) if match else 0
    return {
        "task_id": str(record["id"]),
        "question": str(record["question"]),
        "answer": str(record["answer"]),
        "answer_aliases": [str(a) for a in record.get("answer_aliases") or []],
        "answerable": bool(record.get("answerable", True)),
        "hops": hops,
        "supporting_idx": [int(p.get("idx", i)) for i, p in enumerate(paragraphs) if p.get("is_supporting")],
        # the paragraph each hop reads, in hop order (MuSiQue's decomposition; the warm-up teacher's path)
        "hop_support_idx": [int(d["paragraph_support_idx"]) for d in decomposition
                            if isinstance(d, dict) and d.get("paragraph_support_idx") is not None],
        "paragraphs": [{"idx": int(p.get("idx", i)), "title": str(p.get("title", "")),
                        "paragraph_text": str(p["paragraph_text"])} for i, p in enumerate(paragraphs)],
    }


def load(path: PathLike, include_unanswerable: bool = False) -> list[dict[str, Any]]:
    """Task inputs from MuSiQue JSONL (a file or a directory of them)."""
    tasks = [to_task(r) for r in iter_records(path)]
    return tasks if include_unanswerable else [t for t in tasks if t["answerable"]]
