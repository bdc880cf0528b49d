"""docs/safety-probes.md from the results of the tests marked ``safety``.

``python -m scripts.safety_report [--junit FILE] [--out MD]``

Each safety test carries its probe row (what is tried, what an earlier version did, what it
must do now: a ``SAFETY_PROBES`` table in its test module, or ``@pytest.mark.safety(...)``,
put in the report by ``tests/conftest.py``). Without ``--junit`` this runs
``pytest -m safety`` and reads its junit XML; with it, it reads a junit XML of any run that
included them (``pytest --junitxml=FILE -o junit_family=xunit1``). A row is met when every
test behind it passed; a skipped test (a full-disk test without root, say) is listed as not
run, with the reason. The exit code is 1 when a row that ran is not met.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tfcnn.atomic import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
PYTEST_ARGS = ("-m", "safety", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1")


@dataclass
class Row:
    """One probe and the tests behind it.

    Attributes
    ----------
    probe, before, must : str
    tests : list of str
        Node ids of the tests that answer it.
    outcomes : list of str
        ``passed``, ``failed: ...`` or ``skipped: ...``, one per test.
    observed : list of str
        What the tests recorded they saw (``record_property("observed", ...)``).
    seconds : float
    """

    probe: str
    before: str
    must: str
    tests: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ran(self) -> bool:
        return any(not o.startswith("skipped") for o in self.outcomes)

    @property
    def met(self) -> bool:
        return self.ran and all(o == "passed" for o in self.outcomes
                                if not o.startswith("skipped"))


def _outcome(case: ET.Element) -> str:
    for kind in ("failure", "error"):
        node = case.find(kind)
        if node is not None:
            message = (node.get("message") or node.text or kind).strip().splitlines()
            return f"failed: {message[0][:160] if message else kind}"
    node = case.find("skipped")
    if node is not None:
        return f"skipped: {(node.get('message') or '').strip()[:160]}"
    return "passed"


def read_rows(junit: str | os.PathLike) -> list[Row]:
    """The probe rows of a junit XML, in the order their first test ran; tests that name the
    same probe are one row."""
    rows: dict[str, Row] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = [(p.get("name"), p.get("value")) for p in case.iter("property")]
        found = [json.loads(v) for k, v in props if k == "safety"]
        observed = [v for k, v in props if k == "observed"]
        for spec in found:
            row = rows.setdefault(spec["probe"], Row(spec["probe"], spec.get("before", ""),
                                                     spec.get("must", "")))
            row.tests.append(f"{case.get('classname', '').replace('.', '/')}.py::"
                             f"{case.get('name')}")
            row.outcomes.append(_outcome(case))
            row.observed += observed
            row.seconds += float(case.get("time") or 0.0)
    return list(rows.values())


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _now(row: Row) -> str:
    if not row.ran:
        return "not run: " + next(o for o in row.outcomes).removeprefix("skipped: ")
    failed = [o for o in row.outcomes if o.startswith("failed")]
    head = "**met**" if row.met else f"**NOT MET** ({failed[0].removeprefix('failed: ')})"
    return head + (f": {row.observed[0]}" if row.observed else "")


def _tests(row: Row) -> str:
    """The tests of a row; a parametrized test's cases share one name."""
    names = list(dict.fromkeys(t if "[" not in t or len(row.tests) == 1 else
                               t.split("[")[0] + "[…]" for t in row.tests))
    return "<br>".join(f"`{_cell(n)}`" for n in names)


def markdown(rows: list[Row], *, machine: str, command: str) -> str:
    """The table (probe · before · must · now · seconds · tests) under a summary."""
    ran = [r for r in rows if r.ran]
    not_met = [r.probe for r in ran if not r.met]
    skipped = [r.probe for r in rows if not r.ran]
    lines = [
        "# Safety probes: before and now",
        "",
        "Each row is a hostile or unlucky input, tried for real by the tests marked `safety` "
        "(real subprocesses for the CLI, Streamlit's AppTest for the pages, a real `make "
        "run`); *before* is what an earlier version did, *must* what it must do now, *now* "
        f"this run's outcome ({machine}). Regenerate with `{command}` (the full-disk rows "
        "need root to mount a small tmpfs).",
        "",
        f"**{len(ran) - len(not_met)} of {len(ran)} rows do what they must now.** Not met: "
        f"{', '.join(not_met) or 'none'}. Not run here: {', '.join(skipped) or 'none'}.",
        "",
        "| probe | before | must | now | s | tests |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(f"| {_cell(row.probe)} | {_cell(row.before)} | {_cell(row.must)} | "
                     f"{_cell(_now(row))} | {row.seconds:.1f} | {_tests(row)} |")
    return "\n".join(lines) + "\n"


def machine_summary() -> str:
    """CPU cores, torch, whether CUDA is present, the date."""
    import torch

    return (f"{os.cpu_count()} CPU cores, torch {torch.__version__}, CUDA "
            f"{'present' if torch.cuda.is_available() else 'absent'}, "
            f"{time.strftime('%Y-%m-%d')}")


def run_safety_tests(junit: Path, extra: list[str]) -> int:
    """``pytest -m safety`` into ``junit``; its exit code."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    return subprocess.run([sys.executable, "-m", "pytest", *PYTEST_ARGS,
                           f"--junitxml={junit}", *extra, "tests"], cwd=REPO, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.safety_report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--junit", type=Path, default=None,
                        help="read this junit XML instead of running the safety tests")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "safety-probes.md")
    parser.add_argument("pytest_args", nargs="*",
                        help="more pytest arguments (after --), e.g. -- -k cli")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tfcnn-safety-") as tmp:
        junit = args.junit
        if junit is None:
            junit = Path(tmp) / "safety.xml"
            run_safety_tests(junit, args.pytest_args)
        if not Path(junit).is_file():
            print(f"error: {junit}: no junit XML (did pytest run?)", file=sys.stderr)
            return 2
        rows = read_rows(junit)
    if not rows:
        print(f"error: {junit}: no test marked safety in it", file=sys.stderr)
        return 2
    write_text_atomic(args.out, markdown(rows, machine=machine_summary(),
                                         command="python -m scripts.safety_report"))
    met = sum(r.met for r in rows if r.ran)
    print(f"{met} of {sum(r.ran for r in rows)} rows met -> {args.out}")
    return 0 if all(r.met for r in rows if r.ran) else 1


if __name__ == "__main__":
    sys.exit(main())
