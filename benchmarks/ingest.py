"""Ingest throughput end to end: real client (Tracer + SpanExporter) -> gRPC -> server process(es) -> store.

This process records ~1 KB LLM spans (system/user/assistant messages, model, usage, agent name; 50 per
rollout) through the real tracer and exporter, with the exporter's defaults (batches of up to 2048 spans,
3 Export calls in flight) except a 256 MiB queue (the loop produces faster than anything can ingest, and
the default 32 MiB would drop). ``serve`` runs as its own process on SQLite (WAL, every commit fsync'd before
the answer). The rate is spans acked durable / (first span recorded -> last span acked). Each run starts a
fresh server on a fresh database file; the figures printed per run are: spans/s, p50/p99 latency of one
Export call (send -> durable ack), the group commit's merging, CPU per span of each side (/proc) and peak
RSS, each with the machine's load average at the start and end of the run. The summary gives the best and
the median run. Target on a 2-core machine with both sides on it: >= 50,000 spans/s.

The producing loop never waits on I/O, so it holds the GIL almost always: the worst case for the exporter's
threads (see produce()). ``--switch-interval`` shortens their waits; a real agent waits on its model.

    python benchmarks/ingest.py --spans 200000
    python benchmarks/ingest.py --db postgresql://user:pw@127.0.0.1:55432/bench --replicas 2

With --replicas N, N server processes share the store and the client is given all N endpoints
(round-robin). Server CPU/RSS figures cover the server processes, not PostgreSQL's own.
"""
from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentlightning.core.client import LightningClient
from agentlightning.core.context import new_rollout_context, use_rollout
from agentlightning.core.exporter import ExporterConfig, SpanExporter
from agentlightning.core.kinds import SpanKind
from agentlightning.core.store import redact
from agentlightning.core.tracer import Tracer

PROMPT = ("You are a careful SQL writer. Given the schema of table orders(id, region, amount, day) "
          "write a query that answers the user's question. ") * 3
QUESTION = "What was the total revenue per region in March 2024, highest first? " * 3
ANSWER = "SELECT region, SUM(amount) AS revenue FROM orders WHERE day LIKE '2024-03-%' GROUP BY region ORDER BY revenue DESC;" * 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_seconds() -> float:
    """CPU of every process named postgres on this machine (the database, when it runs here)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                total += _cpu_seconds(int(entry.name))
        except (OSError, ValueError):
            pass
    return total


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def produce(tracer: Tracer, n: int, per_rollout: int = 50, prefix: str = "bench") -> None:
    """Realistic LLM spans: ~1 KB of messages, usage, model, agent name; one rollout per 50 spans.

    A tight loop that never waits on I/O: the worst case for the exporter's threads, which need the GIL
    now and then and, against a thread that never releases it, wait up to Python's 5 ms switch interval
    each time (a real agent releases the GIL while it waits on its model)."""
    made = 0
    r = 0
    while made < n:
        with use_rollout(new_rollout_context(f"{prefix}-{r}")):
            for _ in range(min(per_rollout, n - made)):
                span = tracer.start_span("chat", SpanKind.LLM, agent_name="writer")
                llm = span.proto.llm
                llm.request_model = "smollm2-135m-instruct"
                llm.request_messages.add(role="system", content=PROMPT)
                llm.request_messages.add(role="user", content=QUESTION)
                llm.response_messages.add(role="assistant", content=ANSWER)
                llm.usage.input_tokens = 180
                llm.usage.output_tokens = 60
                llm.finish_reasons.append("stop")
                span.end()
                made += 1
        r += 1


def run_once(args: argparse.Namespace, run: int) -> dict:
    """One run on a fresh server (and, by default, a fresh SQLite file): returns its figures."""
    load_before = os.getloadavg()[0]
    tmp = tempfile.mkdtemp(prefix="al-bench-")
    db = args.db or os.path.join(tmp, "bench.db")
    ports = [_free_port() for _ in range(args.replicas)]
    server_logs = [open(os.path.join(tmp, f"server-{port}.log"), "w+") for port in ports]
    servers = [subprocess.Popen([sys.executable, "-m", "agentlightning.core.cli", "--log-level", "INFO", "serve",
                                 "--db", db, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=log)
               for port, log in zip(ports, server_logs)]
    endpoint = ",".join(f"127.0.0.1:{port}" for port in ports)
    prefix = f"bench{run}"
    try:
        for port in ports:
            with LightningClient(f"127.0.0.1:{port}") as probe:
                probe.wait_ready(30)
        exporter = SpanExporter(ExporterConfig(
            endpoint=endpoint, spool_dir=os.path.join(tmp, "spool"), max_batch_spans=args.batch, senders=args.senders,
            max_queue_bytes=256 * 1024 * 1024, flush_interval_s=0.005))
        tracer = Tracer(exporter)
        server_cpu0, client_cpu0 = sum(_cpu_seconds(s.pid) for s in servers), _cpu_seconds(os.getpid())
        pg_cpu0 = _postgres_cpu_seconds()
        start = time.perf_counter()
        produce(tracer, args.spans, prefix=prefix)
        produced_s = time.perf_counter() - start
        if not exporter.flush(600):
            print("flush did not finish", file=sys.stderr)
        elapsed = time.perf_counter() - start
        server_cpu = sum(_cpu_seconds(s.pid) for s in servers) - server_cpu0
        pg_cpu = _postgres_cpu_seconds() - pg_cpu0
        client_cpu = _cpu_seconds(os.getpid()) - client_cpu0
        stats = exporter.stats()
        latencies = sorted(exporter.ack_latencies_s())
        exporter.close()
        with LightningClient(endpoint) as c:
            stored = sum(len(c.query_spans(f"{prefix}-{r}")) for r in range(0, (args.spans + 49) // 50, 97))
        server_rss = max(_peak_rss_mib(s.pid) for s in servers)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(30)
    commits = []
    for log in server_logs:
        log.seek(0)
        commits += [line.split("group commit: ", 1)[1].strip() for line in log if "group commit: " in line]
        log.close()
    figures = {
        "rate": stats.acked / elapsed, "elapsed": elapsed, "acked": stats.acked, "stats": stats, "stored": stored,
        "producer_rate": args.spans / produced_s,
        "p50": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan"),
        "calls": len(latencies), "server_rss": server_rss, "commits": "; ".join(commits) or "not reported",
        "client_us": client_cpu / args.spans * 1e6, "server_us": server_cpu / args.spans * 1e6,
        "pg_us": pg_cpu / args.spans * 1e6, "load": (load_before, os.getloadavg()[0]),
    }
    _print_run(run, args, figures)
    return figures


def _print_run(run: int, args: argparse.Namespace, f: dict) -> None:
    stats = f["stats"]
    load = f"load average {f['load'][0]:.2f} -> {f['load'][1]:.2f}"
    print(f"run {run}: {f['rate']:,.0f} spans/s acked durable ({f['elapsed']:.2f} s; {load})")
    print(f"  acked {f['acked']} (dropped {stats.dropped_total}, spooled {stats.spooled}, rejected {stats.rejected});"
          f" sampled rollouts read back: {f['stored']} spans; producer loop {f['producer_rate']:,.0f} spans/s")
    print(f"  ack latency per Export call: p50 {f['p50']:.1f} ms, p99 {f['p99']:.1f} ms ({f['calls']} calls);"
          f" group commit: {f['commits']}")
    print(f"  CPU per span: client {f['client_us']:.1f} us, server {f['server_us']:.1f} us"
          + (f", PostgreSQL {f['pg_us']:.1f} us" if f["pg_us"] > 0 else "")
          + f"; peak RSS server {f['server_rss']:.0f} MiB ({load})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3, help="runs, each on a fresh server: best and median reported")
    parser.add_argument("--batch", type=int, default=ExporterConfig.max_batch_spans, help="max spans per Export call")
    parser.add_argument("--senders", type=int, default=ExporterConfig.senders, help="Export calls in flight at once")
    parser.add_argument("--db", default="", help="store path or postgresql:// URL (default: a temp SQLite file per run)")
    parser.add_argument("--replicas", type=int, default=1, help="server processes sharing the store")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval() in this (producing) process: shortens the exporter threads' "
                             "waits for the GIL held by the tight producing loop (see produce()).")
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    size = len(_sample_span().SerializeToString())
    print(f"{args.spans} spans of ~{size} bytes each per run, batches of <= {args.batch}, {args.senders} in flight, "
          f"store {redact(args.db) if args.db else 'a fresh SQLite file'}, {args.replicas} server process(es), "
          f"{os.cpu_count()} CPUs")
    results = [run_once(args, run) for run in range(1, args.runs + 1)]
    rates = sorted(r["rate"] for r in results)
    best = max(results, key=lambda r: r["rate"])
    client_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"throughput: best {rates[-1]:,.0f}, median {statistics.median(rates):,.0f} spans/s acked durable "
          f"(best run's load average {best['load'][0]:.2f} -> {best['load'][1]:.2f}); target 50,000 -> "
          f"{rates[-1] / 50_000:.2f}x best, {statistics.median(rates) / 50_000:.2f}x median")
    print(f"CPU per span (best run): client {best['client_us']:.1f} us, server {best['server_us']:.1f} us; "
          f"peak RSS client {client_rss:.0f} MiB, server {max(r['server_rss'] for r in results):.0f} MiB")
    return 0 if all(r["acked"] == args.spans for r in results) else 1


def _sample_span():
    from agentlightning.core.tracer import MemorySink

    sample = Tracer(MemorySink())
    produce(sample, 1)
    return sample.sink.spans[0]


if __name__ == "__main__":
    sys.exit(main())
