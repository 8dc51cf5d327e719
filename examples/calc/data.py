"""Calc-X data: a loader for the official format and a generator of word problems in that format.

Calc-X (MU-NLPC, e.g. ``MU-NLPC/Calc-gsm8k``, ``Calc-ape210k``, ``Calc-mawps``) stores one problem per
record with the fields

* ``id``           — a string id;
* ``question``     — the word problem;
* ``chain``        — the worked solution as an html-like calculator chain: each step is
  ``<gadget id="calculator">EXPR</gadget>`` followed by ``<output>VALUE</output>``, and the chain ends
  with ``<result>ANSWER</result>``;
* ``result``       — the answer as a string (may be a fraction such as ``3/4``);
* ``result_float`` — the answer as a number.

The hub publishes it as parquet; JSON Lines with the same fields is the same format one record per
line. :func:`load` reads either (a file, or a directory of ``*.jsonl``/``*.parquet`` files) and
returns task inputs ``{"task_id", "question", "result", "result_float"}`` (plus ``chain`` when the record has
one; the agent never reads it, the warm-up teacher of :mod:`.teacher` replays it). :func:`generate` writes
``train.jsonl`` and ``test.jsonl`` of synthetic problems whose difficulty is set by ``level``:
1 = one-step add/subtract with numbers up to ~30, 2 = one step of ``+ - * /``, 3 = two steps.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterable, Union

from agentlightning.examples.calc.calculator import evaluate, format_number
from agentlightning.examples.calc.reward import parse_number

FIELDS = ("id", "question", "chain", "result", "result_float")
NAMES = ["Ana", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jack", "Kofi", "Lena",
         "Maya", "Noah", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara"]
ITEMS = ["apples", "books", "marbles", "stickers", "pencils", "cookies", "stamps", "shells", "coins",
         "cards", "balloons", "oranges"]
ADD = ["{n} has {a} {i}. {n} gets {b} more {i}. How many {i} does {n} have now?",
       "There are {a} {i} in a box. {n} puts {b} more {i} in the box. How many {i} are in the box now?",
       "{n} collected {a} {i} on Monday and {b} {i} on Tuesday. How many {i} did {n} collect in total?"]
SUB = ["{n} has {a} {i}. {n} gives {b} {i} to a friend. How many {i} does {n} have left?",
       "A shop had {a} {i}. It sold {b} {i}. How many {i} does the shop have left?",
       "There were {a} {i} on the table. {n} took {b} of them. How many {i} are still on the table?"]
MUL = ["{n} buys {a} bags with {b} {i} in each bag. How many {i} does {n} buy?",
       "A shelf has {a} rows with {b} {i} in each row. How many {i} are on the shelf?"]
DIV = ["{n} shares {a} {i} equally among {b} friends. How many {i} does each friend get?",
       "{n} packs {a} {i} into boxes of {b}. How many boxes does {n} fill?"]
TWO = ["{n} has {a} {i}, buys {b} more and then gives {c} away. How many {i} does {n} have now?",
       "{n} buys {a} packs of {b} {i} and then loses {c} of them. How many {i} does {n} have left?"]


def chain_of(steps: Iterable[str]) -> tuple[str, str]:
    """The Calc-X chain for a list of calculator expressions (each may use the previous output)."""
    parts, value = [], None
    for expression in steps:
        value = evaluate(expression)
        parts.append(f'<gadget id="calculator">{expression}</gadget>\n<output>{format_number(value)}</output>')
    result = format_number(value)
    return "\n\n".join(parts) + f"\n\n<result>{result}</result>", result


def make_problem(rng: random.Random, level: int = 1) -> tuple[str, list[str]]:
    """(question, calculator steps) for one random problem of the given level."""
    n, i = rng.choice(NAMES), rng.choice(ITEMS)
    if level >= 3:
        template = rng.choice(TWO)
        if template is TWO[0]:
            a, b = rng.randint(5, 40), rng.randint(2, 30)
            c = rng.randint(1, a + b - 1)
            steps = [f"{a} + {b}", f"{a + b} - {c}"]
        else:
            a, b = rng.randint(2, 9), rng.randint(2, 12)
            c = rng.randint(1, a * b - 1)
            steps = [f"{a} * {b}", f"{a * b} - {c}"]
        return template.format(n=n, i=i, a=a, b=b, c=c), steps
    ops = ["+", "-"] if level <= 1 else ["+", "-", "*", "/"]
    op = rng.choice(ops)
    top = 20 if level <= 1 else 90  # level 1: small numbers a 135M model can sometimes add in its head
    if op == "+":
        a, b, templates = rng.randint(2, top), rng.randint(2, top), ADD
    elif op == "-":
        a = rng.randint(5, top + 10)
        b, templates = rng.randint(1, a - 1), SUB
    elif op == "*":
        a, b, templates = rng.randint(2, 12), rng.randint(2, 12), MUL
    else:
        b, q = rng.randint(2, 9), rng.randint(2, 12)
        a, templates = b * q, DIV
    return rng.choice(templates).format(n=n, i=i, a=a, b=b), [f"{a} {op} {b}"]


def generate_records(n: int, seed: int, level: int = 1, prefix: str = "gen") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for k in range(n):
        question, steps = make_problem(rng, level)
        chain, result = chain_of(steps)
        records.append({"id": f"{prefix}-{k}", "question": question, "chain": chain, "result": result,
                        "result_float": float(evaluate(steps[-1]))})
    return records


def generate(out_dir: Union[str, Path], n_train: int, n_test: int, seed: int, level: int = 1) -> dict[str, Path]:
    """Write ``train.jsonl`` and ``test.jsonl`` (Calc-X fields) under ``out_dir``; test problems never
    repeat a training question."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train = generate_records(n_train, seed, level, prefix=f"calc-l{level}-s{seed}-train")
    seen = {r["question"] for r in train}
    test: list[dict[str, Any]] = []
    attempt = 0
    while len(test) < n_test:
        batch = generate_records(n_test * 2 + 8, seed + 7919 * (attempt + 1), level,
                                 prefix=f"calc-l{level}-s{seed}-test{attempt}")
        test.extend(r for r in batch if r["question"] not in seen and not seen.add(r["question"]))
        attempt += 1
    files = {"train": out / "train.jsonl", "test": out / "test.jsonl"}
    for split, records in (("train", train), ("test", test[:n_test])):
        with open(files[split], "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
    return files


def _records(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # optional: only for the hub's parquet files

        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        return list(json.loads(text))
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
    return out


def load(path: Union[str, Path]) -> list[dict[str, Any]]:
    """Task inputs from Calc-X records (a .jsonl/.json/.parquet file, or a directory of them)."""
    root = Path(path)
    files = sorted(p for p in root.iterdir() if p.suffix in (".jsonl", ".json", ".parquet")) \
        if root.is_dir() else [root]
    if not files:
        raise ValueError(f"no .jsonl/.json/.parquet files in {root}")
    tasks = []
    for file in files:
        for k, record in enumerate(_records(file)):
            if not isinstance(record, dict) or "question" not in record or "result" not in record:
                raise ValueError(f"{file}: record {k} lacks the Calc-X fields 'question' and 'result'")
            gold = record.get("result_float")
            if gold is None:
                gold = parse_number(record["result"])
            task = {"task_id": str(record.get("id") or f"{file.stem}-{k}"),
                    "question": str(record["question"]), "result": str(record["result"]),
                    "result_float": None if gold is None else float(gold)}
            if record.get("chain"):
                task["chain"] = str(record["chain"])  # the worked solution: the warm-up teacher replays it
            tasks.append(task)
    return tasks
