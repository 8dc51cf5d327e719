"""The SQL example (LangGraph writer/checker/rewriter over SQLite, Spider layout), end to end.

Through the real LangGraph graph, the real LangChain integration, the real Lightning server and the
real runner: against the scripted model server (deterministic: exact spans, transitions and reward)
and against the CPU model server with the tiny random model (garbage SQL: the pipeline still runs and
yields writer/rewriter transitions with reward 0). Plus the Spider loader on hand-written files in the
official layout, the generator, and the execution-match reward on known right and wrong queries.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from agentlightning.examples.sql import EXAMPLE, reward
from agentlightning.examples.sql.execution import (
    QueryError, execution_match, has_top_level_order_by, results_match, run_query,
)
from agentlightning.examples.sql.generate import generate
from agentlightning.examples.sql.spider import load_spider

GOLD = "SELECT name FROM customers WHERE city = 'Paris'"


# -- a tiny Spider dataset, written by hand in the official layout -----------------------------------
@pytest.fixture
def spider_dir(tmp_path: Path) -> Path:
    root = tmp_path / "spider"
    db = root / "database" / "shop" / "shop.sqlite"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, name TEXT, city TEXT, age INTEGER);
        CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(customer_id),
                             amount REAL);
        INSERT INTO customers VALUES (1, 'Ada', 'Paris', 30), (2, 'Ben', 'Lima', 41), (3, 'Cleo', 'Paris', 25),
                                     (4, 'Dan', 'Oslo', 52);
        INSERT INTO orders VALUES (1, 1, 10.0), (2, 1, 5.5), (3, 3, 20.0), (4, 2, 7.25);
    """)
    conn.commit()
    conn.close()
    tables = [{
        "column_names": [[-1, "*"], [0, "customer id"], [0, "name"], [0, "city"], [0, "age"], [1, "order id"],
                         [1, "customer id"], [1, "amount"]],
        "column_names_original": [[-1, "*"], [0, "customer_id"], [0, "name"], [0, "city"], [0, "age"],
                                  [1, "order_id"], [1, "customer_id"], [1, "amount"]],
        "column_types": ["text", "number", "text", "text", "number", "number", "number", "number"],
        "db_id": "shop", "foreign_keys": [[6, 1]], "primary_keys": [1, 5],
        "table_names": ["customers", "orders"], "table_names_original": ["customers", "orders"],
    }]
    questions = [
        {"db_id": "shop", "query": GOLD, "query_toks": ["SELECT", "name", "FROM", "customers", "WHERE", "city", "=",
                                                        "'Paris'"],
         "query_toks_no_value": ["select", "name", "from", "customers", "where", "city", "=", "value"],
         "question": "Which customers live in Paris?",
         "question_toks": ["Which", "customers", "live", "in", "Paris", "?"],
         "sql": {"select": [False, [[0, [0, [0, 2, False], None]]]], "from": {"table_units": [["table_unit", 0]],
                 "conds": []}, "where": [[False, 2, [0, [0, 3, False], None], "\"Paris\"", None]],
                 "groupBy": [], "having": [], "orderBy": [], "limit": None, "intersect": None, "union": None,
                 "except": None}},
        {"db_id": "shop", "query": "SELECT count(*) FROM orders", "question": "How many orders are there?",
         "query_toks": [], "query_toks_no_value": [], "question_toks": [], "sql": {}},
    ]
    (root / "tables.json").write_text(json.dumps(tables))
    (root / "dev.json").write_text(json.dumps(questions))
    (root / "train_spider.json").write_text(json.dumps(questions[1:]))
    return root


@pytest.fixture
def shop_db(spider_dir: Path) -> Path:
    return spider_dir / "database" / "shop" / "shop.sqlite"


# -- loader -----------------------------------------------------------------------------------------
def test_loader_reads_the_official_spider_layout(spider_dir, tmp_path):
    tasks = load_spider(spider_dir)  # a directory: its dev.json
    assert [t["question"] for t in tasks] == ["Which customers live in Paris?", "How many orders are there?"]
    first = tasks[0]
    assert set(first) == {"db_id", "question", "query", "db_path", "schema"}
    assert first["db_id"] == "shop" and first["query"] == GOLD
    assert Path(first["db_path"]).is_absolute() and Path(first["db_path"]).is_file()
    assert first["schema"].splitlines() == [
        "CREATE TABLE customers (customer_id number primary key, name text, city text, age number);",
        "CREATE TABLE orders (order_id number primary key, customer_id number references customers(customer_id), "
        "amount number);",
    ]
    json.dumps(tasks)  # task inputs travel as JSON
    assert [t["query"] for t in load_spider(spider_dir / "train_spider.json")] == ["SELECT count(*) FROM orders"]
    assert len(load_spider(spider_dir / "dev.json", limit=1)) == 1

    bad = json.loads((spider_dir / "dev.json").read_text())
    bad[0]["db_id"] = "missing"
    (spider_dir / "broken.json").write_text(json.dumps(bad))
    with pytest.raises(KeyError, match="missing"):
        load_spider(spider_dir / "broken.json")
    with pytest.raises(FileNotFoundError):
        load_spider(tmp_path / "nowhere")


def test_loader_finds_the_test_release_files(spider_dir):
    (spider_dir / "database").rename(spider_dir / "test_database")
    (spider_dir / "tables.json").rename(spider_dir / "test_tables.json")
    (spider_dir / "dev.json").rename(spider_dir / "test.json")
    tasks = load_spider(spider_dir / "test.json")
    assert len(tasks) == 2 and "test_database" in tasks[0]["db_path"]


# -- generator --------------------------------------------------------------------------------------
def test_generator_writes_a_spider_layout_the_loader_accepts(tmp_path):
    files = generate(tmp_path / "a", 30, 10, 3)
    assert set(files) >= {"train", "test"}
    assert files["train"].name == "train_spider.json" and files["test"].name == "dev.json"
    tables = json.loads((tmp_path / "a" / "tables.json").read_text())
    assert {t["db_id"] for t in tables} == {"shop_1", "school_1", "company_1"}
    for entry in tables:
        columns = entry["column_names_original"]
        assert columns[0] == [-1, "*"] and len(entry["column_types"]) == len(columns) == len(entry["column_names"])
        assert all(0 < c < len(columns) for pair in entry["foreign_keys"] for c in pair)
    train, test = EXAMPLE.load(files["train"]), EXAMPLE.load(files["test"])
    assert len(train) == 30 and len(test) == 10
    assert not {(t["db_id"], t["query"]) for t in test} & {(t["db_id"], t["query"]) for t in train}
    for task in train + test:
        assert run_query(task["db_path"], task["query"]).rows, task  # every gold query returns rows
        assert EXAMPLE.reward(task["query"], task) == 1.0
    record = json.loads(files["test"].read_text())[0]
    assert {"db_id", "question", "query", "question_toks", "query_toks", "query_toks_no_value"} <= set(record)
    # Seeded: the same seed writes the same files; size is controllable.
    again = generate(tmp_path / "b", 30, 10, 3)
    assert again["test"].read_text() == files["test"].read_text()
    assert again["train"].read_text() == files["train"].read_text()
    assert generate(tmp_path / "c", 30, 10, 4)["test"].read_text() != files["test"].read_text()
    bigger = generate(tmp_path / "d", 5, 5, 3, rows=30)
    assert run_query(bigger["database"] / "shop_1" / "shop_1.sqlite", "SELECT count(*) FROM customers").rows == [(30,)]
    with pytest.raises(ValueError, match="distinct questions"):
        generate(tmp_path / "e", 1, 10_000, 0)


# -- reward -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("predicted, gold, expected", [
    (GOLD, GOLD, 1.0),
    ("select NAME as who from customers where city='Paris';", GOLD, 1.0),  # aliases, case, trailing ';'
    ("SELECT name FROM customers WHERE age < 35", GOLD, 1.0),  # a different query, the same result
    ("SELECT name FROM customers WHERE city = 'Paris' ORDER BY name DESC", GOLD, 1.0),  # gold has no ORDER BY
    ("SELECT name FROM customers WHERE city = 'Lima'", GOLD, 0.0),
    ("SELECT name, age FROM customers WHERE city = 'Paris'", GOLD, 0.0),  # an extra column
    ("SELECT age, name FROM customers", "SELECT name, age FROM customers", 1.0),  # column order
    ("SELECT name FROM customers ORDER BY age", "SELECT name FROM customers ORDER BY age", 1.0),
    ("SELECT name FROM customers ORDER BY age DESC", "SELECT name FROM customers ORDER BY age", 0.0),  # row order
    ("SELECT name FROM customers", "SELECT name FROM customers ORDER BY age", 0.0),
    ("SELECT age, name FROM customers ORDER BY age", "SELECT name, age FROM customers ORDER BY age", 1.0),
    ("SELECT DISTINCT city FROM customers", "SELECT city FROM customers", 0.0),  # duplicates count
    ("SELECT 2.0", "SELECT count(*) FROM customers WHERE city = 'Paris'", 1.0),  # numbers by value
    ("SELECT avg(amount) FROM orders", "SELECT sum(amount) / 4.0 FROM orders", 1.0),
    ("SELEC name FROM customers", GOLD, 0.0),  # invalid SQL
    ("SELECT nme FROM customers", GOLD, 0.0),  # unknown column
    ("SELECT name FROM customers; SELECT 1", GOLD, 0.0),  # two statements
    ("", GOLD, 0.0),
    (None, GOLD, 0.0),
])
def test_execution_match(shop_db, predicted, gold, expected):
    assert execution_match(predicted, gold, shop_db) == expected
    assert reward(predicted, {"query": gold, "db_path": str(shop_db)}) == expected


def test_queries_run_read_only_and_time_out(shop_db):
    assert execution_match("DELETE FROM customers", GOLD, shop_db) == 0.0
    assert run_query(shop_db, "SELECT count(*) FROM customers").rows == [(4,)]  # nothing was deleted
    endless = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r"
    with pytest.raises(QueryError, match="timed out"):
        run_query(shop_db, endless, timeout_s=0.2)
    with pytest.raises(QueryError, match="more than 2 rows"):
        run_query(shop_db, "SELECT * FROM customers", max_rows=2)


def test_order_by_detection_and_column_permutations():
    assert has_top_level_order_by("SELECT a FROM t ORDER BY a")
    assert not has_top_level_order_by("SELECT count(*) FROM (SELECT a FROM t ORDER BY a)")
    assert not has_top_level_order_by("SELECT a FROM t WHERE b = 'order by'")
    assert results_match([(1, "x"), (2, "y")], [("y", 2), ("x", 1)], ordered=False)
    assert not results_match([(1, "x"), (2, "y")], [("y", 2), ("x", 1)], ordered=True)
    assert not results_match([(1, "y"), (2, "x")], [("x", 1), ("y", 2)], ordered=False)  # pairs differ
    assert results_match([], [], ordered=True)


# -- the agent, end to end ----------------------------------------------------------------------------
pytest.importorskip("langgraph")
pytest.importorskip("langchain_openai")

from agentlightning.core.lightningrl import LightningRLConfig, build_transitions, load_from_client  # noqa: E402
from agentlightning.core.runner import Runner  # noqa: E402
from agentlightning.examples.sql.agent import extract_sql, parse_verdict, solve  # noqa: E402
from agentlightning.examples.sql.prompts import rewriter_messages, writer_messages  # noqa: E402
from agentlightning.examples.sql.teacher import teacher_script  # noqa: E402
from agentlightning.testing.scripted_llm import Reply, RequestView, ScriptedLLMServer  # noqa: E402
from agentlightning.v1 import spans_pb2  # noqa: E402


def test_sql_and_verdict_parsing():
    assert extract_sql("```sql\nSELECT a FROM t;\n```") == "SELECT a FROM t"
    assert extract_sql("Sure! SELECT a FROM t WHERE b = 1; SELECT 2") == "SELECT a FROM t WHERE b = 1"
    assert extract_sql("```sql\nSELECT a") == "SELECT a"
    assert extract_sql("no query here") == "no query here"
    assert parse_verdict("CORRECT, it lists them") == "correct"
    assert parse_verdict("Incorrect: wrong column") == "wrong"
    assert parse_verdict("This is not correct") == "wrong"
    assert parse_verdict("WRONG") == "wrong" and parse_verdict("blah") == "wrong"


class WordTokenizer:
    """Stand-in for a Hugging Face tokenizer (same ``apply_chat_template`` contract), one id per word."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=False, tools=None):
        text = " ".join(f"<{m['role']}> {m['content'] or ''}" for m in messages)
        return [self.vocab.setdefault(w, len(self.vocab) + 1) for w in text.split()]


def exact(text: str, ids: list[int]) -> Reply:
    return Reply(text, tokens=[f"token_id:{i}" for i in ids], logprobs=[-0.25] * len(ids), model_version="v3")


def sql_script(rewrite: str, checker_sees_errors: bool = True):
    """Writer: a typo'd column; checker: WRONG on an error (or always CORRECT), else CORRECT;
    rewriter: ``rewrite``."""

    def script(request: dict, api: str) -> Reply:
        view = RequestView(request, api)
        if "SQL writer" in view.system:
            return exact("SELECT nme FROM customers WHERE city = 'Paris';", [11, 12, 13])
        if "SQL checker" in view.system:
            last = view.last.get("content") or ""
            return exact("WRONG: the query failed" if "Error:" in last and checker_sees_errors else "CORRECT", [31])
        if "SQL rewriter" in view.system:
            return exact(f"```sql\n{rewrite};\n```", [21, 22])
        raise AssertionError(f"unexpected request: {view.system!r}")

    return script


def run_rollouts(client, tracer, tasks: list[dict], model, group_id: str = "sql") -> list:
    client.enqueue(tasks, group_id=group_id, max_attempts=1)
    results = Runner(client, lambda task: solve(task, model), worker_id="w", tracer=tracer,
                     heartbeat_interval_s=1.0).run()
    assert tracer.sink.flush(10.0)
    assert all(r.success for r in results), [r.error for r in results]
    return results


def llm_agents(client, rollout_id: str) -> list[str]:
    spans = sorted(client.query_spans(rollout_id), key=lambda s: s.start_time_unix_nano)
    return [s.agent_name for s in spans if s.kind == spans_pb2.SPAN_KIND_LLM]


@pytest.mark.parametrize("rewrite, max_turns, checker_sees_errors, reward_value, agents", [
    # writer's SQL fails -> checker WRONG -> rewriter fixes it -> checker CORRECT -> end
    (GOLD, 2, True, 1.0, ["writer", "checker", "rewriter", "checker"]),
    # a checker that calls a failed query CORRECT does not stop the rewrite
    (GOLD, 2, False, 1.0, ["writer", "checker", "rewriter", "checker"]),
    # the rewrite runs but is still wrong; no turns left, so no second check
    ("SELECT name FROM customers", 1, True, 0.0, ["writer", "checker", "rewriter"]),
])
def test_scripted_run_trains_writer_and_rewriter_only(global_tracer, client, spider_dir, rewrite, max_turns,
                                                     checker_sees_errors, reward_value, agents):
    task = dict(load_spider(spider_dir)[0], max_turns=max_turns)
    with ScriptedLLMServer(sql_script(rewrite, checker_sees_errors)) as llm:
        model = SimpleNamespace(base_url=llm.base_url, api_key="dummy", model="scripted")
        (result,) = run_rollouts(client, global_tracer, [task], model)
    assert not llm.errors
    assert result.final_reward == reward_value
    assert llm_agents(client, result.rollout_id) == agents
    spans = client.query_spans(result.rollout_id)
    assert [s.reward.value for s in spans if s.kind == spans_pb2.SPAN_KIND_REWARD] == [reward_value]
    # The failed first query reached the checker as part of the state.
    checker = [s for s in spans if s.kind == spans_pb2.SPAN_KIND_LLM and s.agent_name == "checker"][0]
    assert "Error: no such column: nme" in checker.llm.request_messages[-1].content
    assert {s.agent_name for s in spans if s.kind == spans_pb2.SPAN_KIND_CHAIN} >= {"writer", "execute", "checker"}
    # Each execution is a TOOL span: the typo'd query failed, the rewrite ran.
    tools = sorted((s for s in spans if s.kind == spans_pb2.SPAN_KIND_TOOL), key=lambda s: s.start_time_unix_nano)
    assert [(s.tool.name, s.agent_name, s.tool.outcome) for s in tools] == [
        ("execute_sql", "execute", spans_pb2.TOOL_OUTCOME_ERROR), ("execute_sql", "execute", spans_pb2.TOOL_OUTCOME_OK)]
    assert tools[0].tool.error_message == "no such column: nme"
    assert json.loads(tools[1].tool.arguments)["query"] == rewrite

    traces = load_from_client(client, [result.rollout_id])
    batch = build_transitions(traces, LightningRLConfig(agents=EXAMPLE.train_agents, tokenizer=WordTokenizer(),
                                                        normalizer="none"))
    assert [t.agent_name for t in batch] == ["writer", "rewriter"]
    assert [list(t.response_token_ids) for t in batch] == [[11, 12, 13], [21, 22]]
    assert all(t.policy_version == "v3" and list(t.response_logprobs) == [-0.25] * len(t.response_token_ids)
               for t in batch)
    # Episode credit plus AIR: each execution is credited to the call that wrote the query.
    assert [t.breakdown.air for t in batch] == [{"tool_error": -0.10}, {"tool_ok": 0.10}]
    assert [round(t.reward, 10) for t in batch] == [reward_value - 0.1, reward_value + 0.1]
    assert batch.reports[0].reasons == []


# -- the warm-up teacher --------------------------------------------------------------------------
def test_teacher_plays_the_gold_query_through_the_real_graph(global_tracer, client, spider_dir):
    task = load_spider(spider_dir)[0]
    with ScriptedLLMServer(teacher_script([task])) as teacher:
        model = SimpleNamespace(base_url=teacher.base_url, api_key="dummy", model="teacher")
        (result,) = run_rollouts(client, global_tracer, [task], model, group_id="teacher")
        with pytest.raises(Exception):  # a question it has no gold query for: HTTP 500, said so
            solve(dict(task, question="How old is the oldest customer?"), model)
        assert any("no gold query for 'How old is the oldest customer?'" in (c.error or "") for c in teacher.calls)
    assert result.final_reward == 1.0
    assert llm_agents(client, result.rollout_id) == ["writer", "checker"]  # CORRECT: no rewrite
    assert [c.reply.content for c in teacher.calls[:2]] == [GOLD + ";", "CORRECT"]
    batch = build_transitions(load_from_client(client, [result.rollout_id]),
                              LightningRLConfig(agents=EXAMPLE.train_agents, tokenizer=WordTokenizer()))
    assert [t.agent_name for t in batch] == ["writer"]  # what the warm-up clones: the writer's call


def test_teacher_answers_the_rewriter_and_every_generated_task(tmp_path):
    from langchain_core.messages import convert_to_openai_messages

    files = generate(tmp_path / "sql", 40, 0, 5)
    tasks = EXAMPLE.load(files["train"])
    script = teacher_script(tasks)
    for task in tasks:
        state = {"question": task["question"], "schema": task["schema"], "sql": "SELECT 1", "error": "boom",
                 "feedback": "WRONG"}
        for messages in (writer_messages(state), rewriter_messages(state)):
            reply = script({"messages": convert_to_openai_messages(messages)}, "chat")
            assert reply.content.endswith(";") and EXAMPLE.reward(extract_sql(reply.content), task) == 1.0
    with pytest.raises(LookupError, match="not a request of the SQL graph"):
        script({"messages": [{"role": "system", "content": "You are a poet."}]}, "chat")


# -- against the CPU model server with the tiny random model -----------------------------------------
@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from agentlightning.trainer.serving import ModelServer
    from agentlightning.trainer.tiny import build_tiny_model

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    try:
        with ModelServer(str(path), served_model_name="tiny", batch_wait_s=0.02) as server:
            yield SimpleNamespace(server=server, path=path)
    finally:
        torch.set_num_threads(previous)


def test_tiny_model_run_yields_writer_and_rewriter_transitions(global_tracer, client, spider_dir, tiny_server):
    from agentlightning.trainer.models import load_tokenizer

    tasks = [dict(t, temperature=0.0) for t in load_spider(spider_dir)]
    model = SimpleNamespace(base_url=tiny_server.server.base_url, api_key="dummy", model="tiny")
    results = run_rollouts(client, global_tracer, tasks, model)
    assert [r.final_reward for r in results] == [0.0, 0.0]  # random weights write no working SQL
    for result in results:
        assert llm_agents(client, result.rollout_id) == ["writer", "checker", "rewriter"]
    traces = load_from_client(client, [r.rollout_id for r in results])
    batch = build_transitions(traces, LightningRLConfig(agents=EXAMPLE.train_agents,
                                                        tokenizer=load_tokenizer(tiny_server.path)))
    assert [t.agent_name for t in batch] == ["writer", "rewriter"] * 2
    assert all(t.response_token_ids and t.prompt_token_ids for t in batch)
    # Final reward 0; AIR: every garbage query failed to run (-0.1 to the call that wrote it).
    assert all(t.breakdown.final_reward == 0.0 and t.breakdown.air == {"tool_error": -0.10} for t in batch)
    # one group, equal outcomes and the same AIR on every call: nothing to prefer
    assert all(t.advantage == pytest.approx(0.0) for t in batch)
    assert all(not report.reasons for report in batch.reports)
