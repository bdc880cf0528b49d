"""The safety-probe runner (scripts/safety_probes.py, probe_kit.py) on its cheapest rows.

Its classification of real subprocesses (a one-line error, a traceback, a hang killed at
the timeout), two CLI rows that fail before torch loads, and the table it writes.
"""

from __future__ import annotations

import json
import sys

import pytest

from scripts import safety_probes as sp
from scripts.probe_kit import REPO, Proc, classify, run_process

CHEAP_ROWS = ("cli-lr-nan", "cli-epochs-1e9")


def python(code: str, *, timeout_s: float = 30) -> Proc:
    return run_process([sys.executable, "-c", code], cwd=REPO, timeout_s=timeout_s)


@pytest.mark.parametrize("code, expected", [
    ("import sys; print('error: bad value 3', file=sys.stderr); sys.exit(2)", "one-line error"),
    ("raise ValueError('boom')", "traceback"),
    ("import sys; print('error: a'); print('error: a', file=sys.stderr); "
     "print('more', file=sys.stderr); sys.exit(2)", "exit 2, 2 stderr lines"),
    ("import warnings; print('warning: cut short', file=__import__('sys').stderr)",
     "ok, one warning line"),
    ("print('fine')", "ok"),
])
def test_classify_real_processes(code, expected):
    assert classify(python(code)) == expected


def test_a_hang_is_killed_at_the_timeout_with_its_children():
    proc = python("import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)",
                  timeout_s=1.0)
    assert classify(proc) == "hang (timeout)" and proc.seconds < 10
    assert proc.peak_rss_mb > 1  # the child's own rusage, not zero


def test_cheapest_cli_rows_run_and_the_table_is_written(tmp_path):
    out = tmp_path / "probes.md"
    code = sp.main(["--only", ",".join(CHEAP_ROWS), "--out", str(out)])
    assert code == 0  # both rows do what they must
    text = out.read_text()
    assert "**2 of 2 rows do what they must now.**" in text
    assert ("| `train --lr nan` | traceback and an empty run folder | one-line error, no folder | "
            "**one-line error**: error: lr must be a finite number > 0, got nan | yes |") in text
    assert "Not yet: none. CLI runs by outcome: 2 one-line error." in text
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [r["id"] for r in rows] == list(CHEAP_ROWS)
    assert all(r["met"] and r["now"] == "one-line error" for r in rows)


def test_unknown_row_is_one_error_line(capsys):
    assert sp.main(["--only", "no-such-row", "--no-write"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown row ids ['no-such-row']")


def test_every_row_names_a_covering_test_that_exists():
    for group in sp.GROUPS:
        for row in group.rows:
            if row.covered_by.startswith("tests/"):
                path, _, name = row.covered_by.partition("::")
                name = name.split("[")[0]
                assert f"def {name}(" in (REPO / path).read_text(), row.id
