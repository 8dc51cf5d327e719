"""Crash safety (the CI-sized run of tests/faults/crash_soak.py): SIGKILL the server under load from
several client processes, several times; nothing acknowledged is ever missing, nothing is stored twice,
and the clients' spools deliver the rest."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "faults"))

import crash_soak  # noqa: E402


def test_sigkill_under_load_loses_nothing_and_duplicates_nothing(tmp_path):
    report = crash_soak.run(clients=3, spans=8000, kills=4, workdir=tmp_path, seed=1, rate=2000)
    assert report["client_exit_codes"] == [0, 0, 0], report["client_reports"]
    assert report["acked_but_missing_at_any_kill"] == 0, report["checks"]
    assert all(c["acked_so_far"] > 0 for c in report["checks"][1:]), report["checks"]
    assert report["lost"] == 0 and report["unexpected"] == 0
    assert report["duplicated"] == 0
    assert report["stored"] == report["spans_sent"] == 24000
