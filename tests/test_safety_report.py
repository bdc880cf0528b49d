"""docs/safety-probes.md from the safety tests' results (scripts/safety_report.py): the rows
the tests carry, read back from a real pytest run's junit XML, and every row's test exists."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.safety_report import main, markdown, read_rows

REPO = Path(__file__).resolve().parents[1]

#: A junit XML as pytest writes it (xunit1): a met row from two tests, a failed one, a
#: skipped one, and a test that is no probe.
JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="tests.test_x" name="test_a[one]" time="1.5"><properties>
 <property name="safety" value='{"probe": "`cmd` a bad file", "before": "traceback", "must": "one line"}'/>
 <property name="observed" value="exit 2: error: bad"/></properties></testcase>
<testcase classname="tests.test_x" name="test_a[two]" time="0.5"><properties>
 <property name="safety" value='{"probe": "`cmd` a bad file", "before": "traceback", "must": "one line"}'/>
 </properties></testcase>
<testcase classname="tests.test_y" name="test_b" time="2"><properties>
 <property name="safety" value='{"probe": "a | pipe in a name", "before": "hung", "must": "refused"}'/>
 </properties><failure message="AssertionError: assert 1 == 2">trace</failure></testcase>
<testcase classname="tests.test_y" name="test_c" time="0"><properties>
 <property name="safety" value='{"probe": "a full disk", "before": "torn", "must": "one line"}'/>
 </properties><skipped message="cannot mount a small tmpfs here"/></testcase>
<testcase classname="tests.test_y" name="test_d" time="0"/>
</testsuite></testsuites>"""


def test_rows_from_a_junit_xml(tmp_path):
    (tmp_path / "j.xml").write_text(JUNIT)
    rows = read_rows(tmp_path / "j.xml")
    assert [r.probe for r in rows] == ["`cmd` a bad file", "a | pipe in a name", "a full disk"]
    first, failed, skipped = rows
    assert first.met and first.tests == ["tests/test_x.py::test_a[one]",
                                         "tests/test_x.py::test_a[two]"]
    assert first.seconds == 2.0 and first.observed == ["exit 2: error: bad"]
    assert failed.ran and not failed.met and not skipped.ran
    text = markdown(rows, machine="a test machine", command="python -m scripts.safety_report")
    assert "**1 of 2 rows do what they must now.** Not met: a | pipe in a name. Not run " \
           "here: a full disk." in text
    assert ("| `cmd` a bad file | traceback | one line | **met**: exit 2: error: bad | 2.0 | "
            "`tests/test_x.py::test_a[…]` |") in text
    assert "| a \\| pipe in a name | hung | refused | **NOT MET** (AssertionError: assert 1 " \
           "== 2) |" in text
    assert "not run: cannot mount a small tmpfs here" in text
    assert main(["--junit", str(tmp_path / "j.xml"), "--out", str(tmp_path / "p.md")]) == 1


def test_every_safety_row_names_a_test_that_is_collected():
    """A renamed or deleted test would drop its row silently: each key of a module's
    SAFETY_PROBES table must name a test pytest collects."""
    modules = sorted(p.stem for p in (REPO / "tests").glob("test_*.py")
                     if "\nSAFETY_PROBES = {" in p.read_text(encoding="utf-8"))
    assert {"test_bad_inputs", "test_serve", "test_train"} <= set(modules)
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", *(f"tests/{m}.py" for m in modules)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    collected = {line.split("::", 1)[1] for line in proc.stdout.splitlines() if "::" in line}
    names = collected | {name.split("[")[0] for name in collected}
    sys.path.insert(0, str(REPO / "tests"))
    try:
        for module in modules:
            table = importlib.import_module(module).SAFETY_PROBES
            missing = [key for key in table if key not in names]
            assert missing == [], f"{module}: no such test {missing}"
    finally:
        sys.path.remove(str(REPO / "tests"))


@pytest.mark.slow
def test_a_real_run_of_two_safety_tests_writes_the_table(tmp_path):
    out = tmp_path / "probes.md"
    proc = subprocess.run([sys.executable, "-m", "scripts.safety_report", "--out", str(out),
                           "--", "-k", "lr-nan or epochs-1e9"], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    text = out.read_text()
    assert "**2 of 2 rows do what they must now.** Not met: none." in text
    assert ("| `train --lr nan` | traceback and an empty run folder | one-line error, no "
            "folder | **met**: exit 2: error: lr must be a finite number > 0, got nan |") in text
    assert "`tests/test_bad_inputs.py::test_cli_bad_input[epochs-1e9]`" in text
