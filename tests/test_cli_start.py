"""A fast start: `python -m tfcnn [COMMAND] --help` loads neither torch nor scipy, and the
app's server loads what the pages need before it listens.

Each call runs in a real subprocess; ``python -X importtime`` lists every module the
interpreter imported, and the assertions are on those lists, not on timings (the timings
are in docs/performance.md, measured from outside the process).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from tfcnn.__main__ import COMMANDS, build_parser

REPO = Path(__file__).resolve().parents[1]
#: What a --help must not pay for (each takes one to several seconds to import).
HEAVY = ("torch", "scipy")


def imported_top_level(args: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime -m tfcnn ARGS``; its result and the top-level packages it
    imported."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "tfcnn", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    modules = {line.rsplit("|", 1)[-1].strip().split(".")[0]
               for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done, modules


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_imports_neither_torch_nor_scipy(command):
    done, modules = imported_top_level([command, "--help"] if command else ["--help"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: python -m tfcnn")
    assert "tfcnn" in modules  # the probe sees imports at all
    assert not modules & set(HEAVY), f"--help of {command or 'tfcnn'} imports {modules & set(HEAVY)}"


def test_the_probe_sees_a_heavy_import():
    """The probe would say so: `-X importtime` of a real scipy import lists scipy."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import scipy.signal"],
                          capture_output=True, text=True, timeout=120)
    modules = {line.rsplit("|", 1)[-1].strip().split(".")[0]
               for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "scipy" in modules


def test_command_list_matches_each_commands_own_help_line():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    own = {a.dest: a.help for a in action._choices_actions}
    assert own == COMMANDS


def test_running_a_command_still_builds_its_full_parser(tmp_path):
    """Only the named command's module is imported, and its options all parse."""
    args = build_parser(only="train").parse_args(["train", str(tmp_path), "--arch", "time",
                                                  "--folds", "3", "--epochs", "5"])
    assert (args.command, args.arch, args.n_folds, args.epochs) == ("train", "time", 3, 5)
    assert callable(args.run)


def test_synth_help_names_every_registered_scenario():
    from tfcnn.commands.synth import SCENARIO_NAMES
    from tfcnn.synth.scenarios import DEFAULT_SCENARIO, SCENARIOS

    assert SCENARIO_NAMES == tuple(SCENARIOS)
    assert SCENARIO_NAMES[0] == DEFAULT_SCENARIO


def test_importing_the_synth_package_leaves_scipy_for_rendering():
    """The app's pages import tfcnn.synth (a sentence, the scenario registry): no scipy."""
    code = "import sys, tfcnn.synth, tfcnn.synth.scenarios; print('scipy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_app_server_loads_the_pages_heavy_modules_before_it_listens():
    """`make run` starts Streamlit through tfcnn.ui.preload: torch, plotly's figure code,
    scipy.stats and pyarrow are imported before the server answers, not during a visitor's
    first page."""
    from tfcnn.ui.serve import streamlit_command

    cmd = streamlit_command("127.0.0.1", 8501)
    assert cmd[1:4] == ["-m", "tfcnn.ui.preload", "run"]
    # no source watcher: it would scan every preloaded module's files on each page load
    assert cmd[cmd.index("--server.fileWatcherType") + 1] == "none"
    code = ("import sys; from tfcnn.ui.preload import preload; preload(); "
            "print(sorted(m for m in ('torch', 'plotly', 'scipy', 'pyarrow', 'tfcnn.ui.results')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(sorted(["torch", "plotly", "scipy", "pyarrow",
                                              "tfcnn.ui.results"]))
    assert "No runtime found" not in done.stderr  # the cache decorators' warnings silenced
    # ... and then hands over to Streamlit's own command line.
    version = subprocess.run([sys.executable, "-m", "tfcnn.ui.preload", "version"], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert version.returncode == 0 and version.stdout.startswith("Streamlit, version")
