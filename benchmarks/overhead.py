"""Time an integration adds to the agent, per LLM call and per tool call, for every framework.

Each section runs a real agent of its framework against the scripted OpenAI-compatible model (in its
own process, as a remote model is) and a real Lightning server (its own process too), with spans
really serialised, queued and exported over gRPC. Runs with and without the integration alternate;
per LLM/tool event the report gives:

* hook time: wall time inside our entry points on the agent's thread (what we own directly);
* end to end: wall time added to the agent's run, and CPU added in every thread of the agent's
  process (agent's thread, the framework's other threads, our background threads): nothing hidden.

Target: median under 50 µs added per event.

    python benchmarks/overhead.py                          # every section, each in its own process
    python benchmarks/overhead.py langchain --runs 100     # one section
    python benchmarks/overhead.py --latency-ms 10          # a model that takes 10 ms to answer
    python benchmarks/overhead.py --llm-in-process         # the old arrangement, for comparison
    python benchmarks/overhead.py langchain --invocations 5  # the same section 5 times: is the median stable?

Adding a framework: write ``benchmarks/overhead_<fw>.py`` with ``measure(runs, warmup, workdir, setup)
-> Measurement`` (see ``overhead_langchain.py``), its model script in ``overhead_scripts.py``, and add
one line to ``FRAMEWORKS`` below.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from overhead_harness import Setup  # noqa: E402
from overhead_report import print_report, print_spread, print_summary, summarize  # noqa: E402

# name -> "module:function" (module under benchmarks/). Imported lazily, one process per framework, so
# frameworks never see each other (global hooks, import side effects).
FRAMEWORKS: dict[str, str] = {
    "langchain": "overhead_langchain:measure",
    "langchain_streaming": "overhead_langchain:measure_streaming",
    "langchain_no_chains": "overhead_langchain:measure_no_chains",
    "openai_agents": "overhead_openai_agents:measure",
    "openai_agents_inline": "overhead_openai_agents:measure_inline",
    "autogen": "overhead_autogen:measure",
    "autogen_streaming": "overhead_autogen:measure_streaming",
    "crewai": "overhead_crewai:measure",
    "crewai_streaming": "overhead_crewai:measure_streaming",
}


def run_section(name: str, runs: int, warmup: int, setup: Setup) -> dict[str, Any]:
    module_name, func_name = FRAMEWORKS[name].split(":")
    result = getattr(importlib.import_module(module_name), func_name)(runs=runs, warmup=warmup, setup=setup)
    report = summarize(result)
    report.setdefault("framework", name)
    report["setup"] = dataclasses.asdict(setup)
    return report


def _in_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, name, "--json", "--runs", str(args.runs), "--warmup", str(args.warmup),
           "--latency-ms", str(args.latency_ms)] + (["--llm-in-process"] if args.llm_in_process else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    return {"framework": name, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1],
            "setup": {"latency_ms": args.latency_ms, "llm_in_process": args.llm_in_process}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frameworks", nargs="*", help=f"subset of {sorted(FRAMEWORKS)} (default: all)")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the scripted model's time per reply")
    parser.add_argument("--llm-in-process", action="store_true",
                        help="serve the scripted model from the agent's own process (competes for its GIL)")
    parser.add_argument("--json", action="store_true", help="print one JSON report per line")
    parser.add_argument("--in-process", action="store_true", help="do not fork one process per framework")
    parser.add_argument("--from-json", metavar="FILE", help="print the reports (and summary) saved by --json")
    parser.add_argument("--invocations", type=int, default=1,
                        help="run each section this many times, each in a fresh process, and print how far the "
                             "median moves between them (on a shared machine: more than one CI suggests)")
    args = parser.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            saved = [json.loads(line) for line in f if line.startswith("{")]
        for report in saved:
            print_report(report)
        print_summary(saved)
        return 0
    names = args.frameworks or list(FRAMEWORKS)
    unknown = [n for n in names if n not in FRAMEWORKS]
    if unknown:
        parser.error(f"unknown framework(s) {unknown}; registered: {sorted(FRAMEWORKS)}")
    setup = Setup(args.latency_ms, args.llm_in_process)
    if args.invocations > 1:
        runs = {name: [_in_child(name, args) for _ in range(args.invocations)] for name in names}
        print_spread(runs)
        return int(any("error" in r for reports in runs.values() for r in reports))
    status = 0
    reports = []
    for name in names:
        if args.in_process or len(names) == 1:
            try:
                report = run_section(name, args.runs, args.warmup, setup)
            except ImportError as exc:  # framework not installed here
                report = {"framework": name, "error": f"not available: {exc}", "setup": dataclasses.asdict(setup)}
        else:
            report = _in_child(name, args)
        if "error" in report:
            status = 1
        reports.append(report)
        print(json.dumps(report), flush=True) if args.json else print_report(report)
    if not args.json and len(reports) > 1:
        print_summary(reports)
    return status


if __name__ == "__main__":
    sys.exit(main())
