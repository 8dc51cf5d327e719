"""The scripted model server for ``overhead.py``, in its own process by default.

A real model is remote: while the agent waits for it, our background threads run without taking the
interpreter lock from anyone. Served from the agent's own process, the scripted server's request
handling (JSON parsing, the script, SSE writing) would compete for that lock with the agent and with
our background work, and the difference would be billed to the integration. So the server runs in a
child process; ``in_process=True`` keeps the old arrangement for comparison.

    python benchmarks/overhead_llm.py langchain --latency-ms 10   # serves until stdin closes
"""
from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from agentlightning.testing.scripted_llm import ScriptedLLMServer

HERE = Path(__file__).resolve().parent
_READY = "scripted model listening on "


@contextlib.contextmanager
def scripted_llm(script: str, latency_ms: float = 0.0, in_process: bool = False) -> Iterator[str]:
    """Serve ``overhead_scripts.SCRIPTS[script]``, each reply after ``latency_ms``; yields the base URL."""
    if in_process:
        sys.path.insert(0, str(HERE))
        from overhead_scripts import SCRIPTS, with_latency

        with ScriptedLLMServer(with_latency(SCRIPTS[script], latency_ms / 1000)) as server:
            yield server.base_url
        return
    proc = subprocess.Popen([sys.executable, str(HERE / "overhead_llm.py"), script, "--latency-ms", str(latency_ms)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith(_READY):
            raise RuntimeError(f"scripted model server did not start: {line!r}")
        yield line[len(_READY):].strip()
    finally:
        if proc.stdin:
            proc.stdin.close()  # the child exits when its stdin closes
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from overhead_scripts import SCRIPTS, with_latency

    with ScriptedLLMServer(with_latency(SCRIPTS[args.script], args.latency_ms / 1000)) as server:
        print(_READY + server.base_url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or dies)


if __name__ == "__main__":
    main()
