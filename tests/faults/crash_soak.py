"""Crash soak: several client processes stream spans while the server is SIGKILLed at random moments
and restarted. Checks after every kill that every span acknowledged so far is in the database, and at
the end that every produced span is stored exactly once (the clients' spools deliver the rest).

    python tests/faults/crash_soak.py --clients 4 --spans 60000 --kills 8     # the long run (240k spans)
"""
from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(db: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "agentlightning.core.cli", "serve", "--db", str(db),
                             "--port", str(port), "--rate-limit", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError("server did not start")


def _stored_ids(db: Path) -> tuple[set[bytes], int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT span_id FROM spans").fetchall()
    finally:
        conn.close()
    return {r[0] for r in rows}, len(rows)


def _acked_ids(logs: list[Path]) -> set[bytes]:
    ids: set[bytes] = set()
    for log in logs:
        data = log.read_bytes() if log.exists() else b""
        ids.update(data[i : i + 8] for i in range(0, len(data) - len(data) % 8, 8))
    return ids


def run(clients: int, spans: int, kills: int, workdir: Path, seed: int = 0, rate: float = 4000.0,
        gap_s: tuple[float, float] = (0.3, 1.5)) -> dict:
    rng = random.Random(seed)
    db = workdir / "soak.db"
    port = _free_port()
    endpoint = f"127.0.0.1:{port}"
    server = _start_server(db, port)
    logs = [workdir / f"acked-{i}.bin" for i in range(clients)]
    procs = [subprocess.Popen([sys.executable, str(HERE / "crash_client.py"), str(i), str(spans), endpoint,
                               str(workdir / f"spool-{i}"), str(logs[i]), str(rate)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(clients)]
    checks = []
    started = time.monotonic()
    for k in range(kills):
        time.sleep(rng.uniform(*gap_s))
        server.send_signal(signal.SIGKILL)
        server.wait()
        acked = _acked_ids(logs)            # read after the kill: all of it was acked before
        stored, rows = _stored_ids(db)
        missing = len(acked - stored)
        checks.append({"kill": k + 1, "acked_so_far": len(acked), "stored": len(stored),
                       "acked_but_missing": missing, "duplicate_rows": rows - len(stored)})
        time.sleep(rng.uniform(0.0, 0.5))   # down for a moment: clients spool
        server = _start_server(db, port)
    outputs = [p.communicate(timeout=600)[0].strip() for p in procs]
    codes = [p.returncode for p in procs]
    server.send_signal(signal.SIGTERM)
    server.wait(60)
    stored, rows = _stored_ids(db)
    expected = {(i + 1).to_bytes(4, "big") + (n + 1).to_bytes(4, "big") for i in range(clients) for n in range(spans)}
    acked = _acked_ids(logs)
    return {
        "clients": clients, "spans_sent": clients * spans, "kills": kills, "rate_per_client": rate, "seconds": round(time.monotonic() - started, 1),
        "acked": len(acked), "stored": len(stored), "lost": len(expected - stored),
        "duplicated": rows - len(stored), "unexpected": len(stored - expected),
        "acked_but_missing_at_any_kill": sum(c["acked_but_missing"] for c in checks),
        "client_exit_codes": codes, "client_reports": outputs, "checks": checks,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--spans", type=int, default=60_000, help="per client")
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=4000.0, help="spans/s per client (0 = unthrottled)")
    parser.add_argument("--gap", type=float, nargs=2, default=(0.3, 1.5), metavar=("MIN_S", "MAX_S"),
                        help="seconds of uptime before each kill, drawn uniformly")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="al-soak-") as tmp:
        report = run(args.clients, args.spans, args.kills, Path(tmp), args.seed, args.rate, tuple(args.gap))
    for line in report.pop("client_reports"):
        print(line)
    print(json.dumps(report, indent=2))
    ok = report["lost"] == 0 and report["duplicated"] == 0 and report["acked_but_missing_at_any_kill"] == 0
    print("RESULT:", "0 lost, 0 duplicated" if ok else "FAILED")
    return 0 if ok and not any(report["client_exit_codes"]) else 1


if __name__ == "__main__":
    sys.exit(main())
