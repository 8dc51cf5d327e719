"""The RAG example end to end: a real OpenAI Agents SDK agent with its BM25 ``retrieve`` tool, run by the real
core ``Runner`` against a real Lightning server (gRPC, SQLite), traced by the real integration; the model is
the scripted OpenAI-compatible server (deterministic: exact trees, rewards, transitions) or the CPU model
server with the tiny random model (garbage answers: the pipeline must still yield well-formed transitions).
Plus the MuSiQue loader on files in the official format, the generator feeding the loader, BM25 and the reward.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("agents")

from agents.tracing import get_trace_provider  # noqa: E402

from agentlightning.core import api  # noqa: E402
from agentlightning.core.client import LightningClient  # noqa: E402
from agentlightning.core.kinds import SpanKind, ToolOutcome  # noqa: E402
from agentlightning.core.lightningrl import LightningRLConfig, build_transitions, load_from_client  # noqa: E402
from agentlightning.core.runner import Runner  # noqa: E402
from agentlightning.core.span_tree import SpanNode, build_tree  # noqa: E402
from agentlightning.core.tracer import Tracer  # noqa: E402
from agentlightning.examples.rag import EXAMPLE  # noqa: E402
from agentlightning.examples.rag import agent as rag_agent  # noqa: E402
from agentlightning.examples.rag.data import MusiqueFormatError, load, to_task  # noqa: E402
from agentlightning.examples.rag.generate import generate_records  # noqa: E402
from agentlightning.examples.rag.retrieval import BM25Index, tokenize  # noqa: E402
from agentlightning.examples.rag.teacher import hop_titles, teacher_script  # noqa: E402
from agentlightning.examples.rag.reward import (  # noqa: E402
    extract_answer, normalize_answer, reward, score, token_f1,
)
from agentlightning.integrations.openai_agents import instrument  # noqa: E402
from agentlightning.testing.scripted_llm import Reply, RequestView, ScriptedLLMServer, ToolCall  # noqa: E402
from agentlightning.trainer.endpoint import ModelEndpoint  # noqa: E402


@pytest.fixture(autouse=True)
def rag_tracing() -> Iterator[None]:
    """The example module registered our processor at import; other test files may have removed it since."""
    instrument()
    yield


# -- a MuSiQue record in the official format (shape of musique_ans_v1.0_dev.jsonl) ----------------------------
OFFICIAL = {
    "id": "2hop__460946_294723",
    "paragraphs": [
        {"idx": 0, "title": "Grant's First Stand", "paragraph_text": "Grant's First Stand is the debut album by "
         "American jazz guitarist Grant Green.", "is_supporting": False},
        {"idx": 1, "title": "Green (Steve Hillage album)", "paragraph_text": "Green is the fourth studio album by "
         "British progressive rock musician Steve Hillage, released in 1978.", "is_supporting": True},
        {"idx": 2, "title": "Miquette Giraudy", "paragraph_text": "Miquette Giraudy (born 9 February 1953) is a "
         "keyboard player and vocalist, best known for her work with Gong and with her partner Steve Hillage.",
         "is_supporting": True},
    ],
    "question": "Who is the spouse of the Green performer?",
    "question_decomposition": [
        {"id": 460946, "question": "Green >> performer", "answer": "Steve Hillage", "paragraph_support_idx": 1},
        {"id": 294723, "question": "#1 >> spouse", "answer": "Miquette Giraudy", "paragraph_support_idx": 2},
    ],
    "answer": "Miquette Giraudy",
    "answer_aliases": ["Miquette"],
    "answerable": True,
}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# -- loader, generator ------------------------------------------------------------------------------------
def test_loader_reads_official_musique_files(tmp_path: Path) -> None:
    unanswerable = dict(OFFICIAL, id="2hop__1_2", answerable=False)
    three = dict(OFFICIAL, id="3hop1__1_2_3", question_decomposition=[])
    path = write_jsonl(tmp_path / "musique_full_v1.0_dev.jsonl", [OFFICIAL, unanswerable, three])
    (task, task3) = load(path)
    assert task == {
        "task_id": "2hop__460946_294723", "question": "Who is the spouse of the Green performer?",
        "answer": "Miquette Giraudy", "answer_aliases": ["Miquette"], "answerable": True, "hops": 2,
        "supporting_idx": [1, 2], "hop_support_idx": [1, 2],
        "paragraphs": [{"idx": p["idx"], "title": p["title"], "paragraph_text": p["paragraph_text"]}
                       for p in OFFICIAL["paragraphs"]],  # no is_supporting: the agent must not see it
    }
    assert task3["hops"] == 3  # from the id when there is no decomposition
    assert task3["hop_support_idx"] == []
    assert [t["task_id"] for t in load(path, include_unanswerable=True)] == ["2hop__460946_294723", "2hop__1_2",
                                                                             "3hop1__1_2_3"]
    json.dumps(task)  # a task input travels as JSON

    # A directory of JSONL files; blank lines are fine.
    (tmp_path / "more.jsonl").write_text("\n" + json.dumps(dict(OFFICIAL, id="x")) + "\n\n", encoding="utf-8")
    assert [t["task_id"] for t in load(tmp_path)] == ["x", "2hop__460946_294723", "3hop1__1_2_3"]


def test_loader_refuses_what_is_not_musique(tmp_path: Path) -> None:
    test_split = {k: v for k, v in OFFICIAL.items() if k not in ("answer", "answer_aliases")}
    with pytest.raises(MusiqueFormatError, match="unlabelled"):
        load(write_jsonl(tmp_path / "musique_ans_v1.0_test.jsonl", [test_split]))
    (tmp_path / "bad.jsonl").write_text(json.dumps(OFFICIAL) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(MusiqueFormatError, match=r"bad\.jsonl:2: not JSON"):
        load(tmp_path / "bad.jsonl")
    with pytest.raises(MusiqueFormatError, match="paragraph_text"):
        to_task(dict(OFFICIAL, paragraphs=[{"title": "t", "text": "x"}]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "empty")


def test_generator_writes_musique_the_loader_accepts(tmp_path: Path) -> None:
    files = EXAMPLE.generate(tmp_path, 12, 4, 7)
    assert set(files) == {"train", "test"}
    train, test = EXAMPLE.load(files["train"]), EXAMPLE.load(files["test"])
    assert (len(train), len(test)) == (12, 4)
    assert not {t["question"] for t in train} & {t["question"] for t in test}  # held out
    again = EXAMPLE.load(EXAMPLE.generate(tmp_path / "again", 12, 4, 7)["train"])
    assert again == train  # seeded

    raw = [json.loads(line) for line in files["train"].read_text().splitlines()]
    assert set(raw[0]) == set(OFFICIAL)  # exactly MuSiQue's fields
    for record in raw + generate_records(6, seed=3, n_paragraphs=9, three_hop_fraction=0.5):
        paragraphs = record["paragraphs"]
        assert [p["idx"] for p in paragraphs] == list(range(len(paragraphs)))
        decomposition = record["question_decomposition"]
        assert record["id"].startswith(f"{len(decomposition)}hop")
        assert record["answer"] == decomposition[-1]["answer"]
        supporting = {p["idx"] for p in paragraphs if p["is_supporting"]}
        assert supporting == {d["paragraph_support_idx"] for d in decomposition}
        for step in decomposition:  # each hop's answer is written in its supporting paragraph
            assert step["answer"] in paragraphs[step["paragraph_support_idx"]]["paragraph_text"]
    assert {len(r["question_decomposition"]) for r in generate_records(6, seed=3, three_hop_fraction=0.5)} == {2, 3}


def test_bm25_finds_the_entity_and_keeps_ties_in_order() -> None:
    index = BM25Index.from_paragraphs(OFFICIAL["paragraphs"])
    assert [h.idx for h in index.search("Miquette Giraudy", k=1)] == [2]
    assert [h.idx for h in index.search("Steve Hillage", k=2)] == [1, 2]  # title + text beat text only
    assert index.search("nothing matches zzz") == []
    assert tokenize("Where was THE founder of Acme born?") == ["founder", "acme", "born"]
    tied = BM25Index([(5, "a", "same words"), (3, "b", "same words")])
    assert [h.idx for h in tied.search("same")] == [5, 3]


# -- reward ---------------------------------------------------------------------------------------------
TASK = {"answer": "Miquette Giraudy", "answer_aliases": ["Miquette"]}


@pytest.mark.parametrize("reply, formatted, f1, value, success", [
    ("Answer: Miquette Giraudy", 1.0, 1.0, 1.0, True),
    ("She married Steve.\n**Answer:** the Miquette Giraudy.", 1.0, 1.0, 1.0, True),  # markdown, article, period
    ("answer: MIQUETTE", 1.0, 1.0, 1.0, True),                                       # an alias, any case
    ("Miquette Giraudy", 0.0, 1.0, 0.8, True),                                       # right, unformatted
    ("Answer: Giraudy", 1.0, 2 / 3, 0.2 + 0.8 * 2 / 3, True),                        # half the name
    ("It is Miquette Giraudy, I think", 0.0, 0.5, 0.4, False),                        # buried in prose
    ("Answer: Steve Hillage", 1.0, 0.0, 0.2, False),                                 # formatted, wrong
    ("Answer:", 0.0, 0.0, 0.0, False),                                               # empty answer line
    ("I do not know.", 0.0, 0.0, 0.0, False),
    (None, 0.0, 0.0, 0.0, False),
])
def test_reward_is_format_plus_token_f1(reply: Any, formatted: float, f1: float, value: float, success: bool) -> None:
    parts = score(reply, TASK)
    assert parts["formatted"] == formatted and parts["f1"] == pytest.approx(f1)
    assert reward(reply, TASK) == pytest.approx(value) and EXAMPLE.reward(reply, TASK) == pytest.approx(value)
    assert (value > EXAMPLE.success_threshold) is success


def test_squad_normalisation_and_answer_extraction() -> None:
    assert normalize_answer("The  Beatles, an Band!") == "beatles band"
    assert token_f1("the cat sat", "a cat") == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0
    assert extract_answer("Answer: first\nthinking...\nAnswer: second") == "second"
    assert extract_answer("no answer line") is None


# -- the agent against the scripted server -----------------------------------------------------------------
class WordTokenizer:
    """Stand-in for a Hugging Face tokenizer (the scripted server has no real vocabulary): one id per word."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def apply_chat_template(self, messages: list, tokenize: bool = True, add_generation_prompt: bool = False,
                            tools: Any = None) -> list[int]:
        text = " ".join(f"<{m['role']}> {m['content'] or ''} {json.dumps(m.get('tool_calls') or '')}"
                        for m in messages)
        text += " <assistant>" if add_generation_prompt else ""
        return [self.vocab.setdefault(w, len(self.vocab) + 1) for w in text.split()]


def two_hop_task() -> tuple[dict, dict]:
    record = next(r for r in generate_records(8, seed=0, n_paragraphs=10)
                  if r["question"].startswith("Where was the founder of"))
    return record, to_task(record)


def research_script(record: dict, final: str, extra_searches: int = 0):
    """Search the company, then its founder (as a model that reads the first result would), then answer."""
    company = record["question_decomposition"][0]["question"].split(" >> ")[0]
    founder = record["question_decomposition"][0]["answer"]

    def script(request: dict, api_name: str) -> Reply:
        seen = len(RequestView(request, api_name).tool_results_since_user)  # after the worked example
        if seen == 0:
            return Reply(tool_calls=[ToolCall("retrieve", json.dumps({"query": company}))])
        if seen == 1 or seen < 2 + extra_searches:
            return Reply(tool_calls=[ToolCall("retrieve", json.dumps({"query": founder}))])
        return Reply(final)

    return script


def run_rollouts(client: LightningClient, tracer: Tracer, tasks: list[dict], endpoint: ModelEndpoint,
                 group_size: int = 1) -> list[Any]:
    for task in tasks:
        client.enqueue([task] * group_size, group_id=f"g-{task['task_id']}", task_id=task["task_id"],
                       max_attempts=1)
    results = Runner(client, lambda t: rag_agent.solve(t, endpoint), "rag-test-worker", tracer=tracer).run()
    assert api.flush(10.0)  # the integration's background worker first, then the exporter
    return results


def shape(node: SpanNode) -> tuple:
    s = node.span
    return (SpanKind(s.kind).name, s.name, s.agent_name, [shape(c) for c in node.children])


TWO_SEARCHES = ("AGENT", "rollout", "", [
    ("AGENT", "researcher", "researcher", [
        ("LLM", "generation", "researcher", []),
        ("TOOL", "retrieve", "researcher", []),
        ("LLM", "generation", "researcher", []),
        ("TOOL", "retrieve", "researcher", []),
        ("LLM", "generation", "researcher", []),
    ]),
    ("REWARD", "final", "", []),
])


@pytest.mark.parametrize("final, expected", [
    ("The founder was born there.\nAnswer: {city}", 1.0),  # right, formatted
    ("{city}", 0.8),                                        # right, no answer line
    ("Answer: the city of {city}", 0.2 + 0.8 * 0.5),        # formatted; F1 = 2 * (1/3 * 1) / (1/3 + 1) = 0.5
])
def test_agent_retrieves_twice_and_answers(final: str, expected: float, global_tracer: Tracer, client: Any) -> None:
    record, task = two_hop_task()
    city = record["answer"]
    with ScriptedLLMServer(research_script(record, final.format(city=city))) as llm:
        (result,) = run_rollouts(client, global_tracer, [task], ModelEndpoint(llm.base_url, "scripted"))
        requests = [c.request for c in llm.calls]
    assert result.success and result.final_reward == pytest.approx(expected)

    # What the model saw: the worked example as chat history, the tool schema, each search's paragraphs.
    assert [m["role"] for m in requests[0]["messages"]] == ["system", "user", "assistant", "tool", "assistant", "tool",
                                                            "assistant", "user"]
    assert requests[0]["messages"][-1]["content"] == task["question"]
    assert all(r["tools"][0]["function"]["name"] == "retrieve" for r in requests)
    first_results, second_results = RequestView(requests[2], "chat").tool_results_since_user
    founder = record["question_decomposition"][0]["answer"]
    assert founder in first_results and f"[{founder}]" in second_results and city in second_results

    (root,) = build_tree(client.query_spans(result.rollout_id))
    assert shape(root) == TWO_SEARCHES
    tools = [c.span for c in root.children[0].children if c.span.kind == SpanKind.TOOL]
    assert [t.tool.outcome for t in tools] == [ToolOutcome.OK, ToolOutcome.OK]
    assert json.loads(tools[1].tool.arguments) == {"query": founder} and city in tools[1].tool.result
    assert root.children[1].span.reward.value == pytest.approx(expected)

    traces = load_from_client(client, [result.rollout_id])
    batch = build_transitions(traces, LightningRLConfig(agents=EXAMPLE.train_agents, tokenizer=WordTokenizer(),
                                                        normalizer="none"))
    assert [t.agent_name for t in batch] == ["researcher"] * 3
    # Episode credit: the final reward on every call, plus AIR for each successful search.
    assert [t.breakdown.air for t in batch] == [{"tool_ok": 0.10, "args_valid": 0.05}] * 2 + [{}]
    assert [round(t.reward, 6) for t in batch] == [round(expected + 0.15, 6)] * 2 + [round(expected, 6)]
    prompts = [list(t.prompt_token_ids) for t in batch]
    assert all(len(a) < len(b) for a, b in zip(prompts, prompts[1:]))  # the conversation grows
    assert all(t.response_token_ids for t in batch)


def test_teacher_walks_every_hop_through_the_real_agent(global_tracer: Tracer, client: Any) -> None:
    records = generate_records(6, seed=3, n_paragraphs=10, three_hop_fraction=0.5)
    tasks = [to_task(r) for r in records]
    assert {t["hops"] for t in tasks} == {2, 3}
    for record, task in zip(records, tasks):  # the hop order is the decomposition's, not the paragraphs'
        assert hop_titles(task) == [task["paragraphs"][d["paragraph_support_idx"]]["title"]
                                    for d in record["question_decomposition"]]
    with ScriptedLLMServer(teacher_script(tasks)) as teacher:
        results = run_rollouts(client, global_tracer, tasks, ModelEndpoint(teacher.base_url, "teacher"))
        with pytest.raises(LookupError, match="no worked path"):
            teacher_script(tasks)({"messages": [{"role": "user", "content": "Who is Zorblax?"}]}, "chat")
    assert [r.final_reward for r in results] == [1.0] * len(tasks)
    hops = {t["task_id"]: t["hops"] for t in tasks}
    for result in results:
        tools = [s for s in client.query_spans(result.rollout_id) if s.kind == SpanKind.TOOL]
        task_id = client.get_rollout(result.rollout_id).task_id
        assert [t.tool.outcome for t in tools] == [ToolOutcome.OK] * hops[task_id]


def test_misbehaving_model_gets_zero_reward_not_a_failed_rollout(global_tracer: Tracer, client: Any) -> None:
    record, task = two_hop_task()
    task = dict(task, max_turns=3, few_shot=False)
    with ScriptedLLMServer(research_script(record, "never reached", extra_searches=5)) as llm:
        (result,) = run_rollouts(client, global_tracer, [task], ModelEndpoint(llm.base_url, "scripted"))
        assert len(llm.calls) == 3
        assert [m["role"] for m in llm.calls[0].request["messages"]] == ["system", "user"]  # no worked example
    assert result.success and result.final_reward == 0.0
    batch = build_transitions(load_from_client(client, [result.rollout_id]),
                              LightningRLConfig(agents="researcher", tokenizer=WordTokenizer(), normalizer="none"))
    assert len(batch) == 3 and all(t.breakdown.final_reward == 0.0 for t in batch)


def test_unreachable_model_fails_the_rollout(global_tracer: Tracer, client: Any) -> None:
    with ScriptedLLMServer([]) as probe:
        dead = probe.base_url  # nothing listens there once the probe stopped
    _, task = two_hop_task()
    (result,) = run_rollouts(client, global_tracer, [task], ModelEndpoint(dead, "scripted"))
    assert not result.success and "APIConnectionError" in result.error  # infrastructure, not the policy


def test_the_module_disables_vendor_export_and_instruments_in_one_line() -> None:
    code = ("import agentlightning.examples.rag.agent; from agents.tracing import get_trace_provider; "
            "print([type(p).__name__ for p in get_trace_provider()._multi_processor._processors])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-not-a-real-key"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['LightningTracingProcessor']"  # the SDK's BatchTraceProcessor is gone
    assert get_trace_provider() is not None


# -- the agent against the CPU model server with the tiny random model --------------------------------------
def test_pipeline_runs_on_the_cpu_model_server_with_the_tiny_model(tmp_path: Path, global_tracer: Tracer,
                                                                   client: Any) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from agentlightning.trainer.models import load_tokenizer
    from agentlightning.trainer.serving import ModelServer
    from agentlightning.trainer.tiny import build_tiny_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = build_tiny_model(tmp_path / "tiny")
        tasks = [dict(t, max_tokens=16, max_turns=2) for t in EXAMPLE.load(EXAMPLE.generate(tmp_path, 2, 0, 1)["train"])]
        with ModelServer(str(path), served_model_name="tiny", batch_wait_s=0.02) as server:
            results = run_rollouts(client, global_tracer, tasks, ModelEndpoint(server.base_url, "tiny"), group_size=2)
    finally:
        torch.set_num_threads(threads)
    assert len(results) == 4 and all(r.success for r in results), [r.error for r in results]
    assert all(0.0 <= r.final_reward <= 1.0 for r in results)

    traces = load_from_client(client, [r.rollout_id for r in results])
    # A tokenizer because the Agents SDK's chat-completions span keeps only choices[0].message, while the
    # server's exact ids sit on the choice: these spans carry no token ids, so LightningRL retokenizes them.
    tokenizer = load_tokenizer(path)
    batch = build_transitions(traces, LightningRLConfig(agents=EXAMPLE.train_agents, tokenizer=tokenizer))
    assert {t.rollout_id for t in batch} == {r.rollout_id for r in results}  # every rollout yields transitions
    vocab = len(tokenizer)
    for t in batch:
        assert t.agent_name == "researcher" and t.group_id.startswith("g-")
        assert t.prompt_token_ids and t.response_token_ids
        assert all(0 <= i < vocab for i in list(t.prompt_token_ids) + list(t.response_token_ids))
        assert t.breakdown.final_reward == next(r.final_reward for r in results if r.rollout_id == t.rollout_id)
    # GRPO groups: two rollouts per task; advantages are centred within each group.
    for group in {t.group_id for t in batch}:
        per_rollout = {t.rollout_id: t.advantage for t in batch if t.group_id == group and t.step_index == 0}
        assert len(per_rollout) == 2
