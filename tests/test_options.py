"""The options ``train`` and ``sweep`` share (tfcnn.commands.options, generated from
tfcnn.request.RunRequest): every option of both commands is in their ``--help`` (a real
subprocess each), and the shared ones read the same in both."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tfcnn.__main__ import build_parser
from tfcnn.request import RunRequest, SweepRequest

ROOT = Path(__file__).resolve().parents[1]

SHARED = {"--arch", "--folds", "--preset", "--protocol", "--device", "--epochs", "--lr",
          "--batch-size", "--amp", "--patch-frames", "--frames-per-beat", "--time-filter",
          "--freq-filter", "--n-filters"}
#: Every option of each command (as before the shared options had one home).
OPTIONS = {
    "train": SHARED | {"--only-folds", "--seed", "--out", "--resume", "--sequential",
                       "--threads", "--snapshots", "--quiet"},
    "sweep": SHARED | {"--seeds", "--engine", "--address", "--cpus-per-task", "--retries",
                       "--threads", "--out", "--resume", "--quiet"},
}


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_help_lists_every_option(command):
    proc = subprocess.run([sys.executable, "-m", "tfcnn", command, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    listed = set(re.findall(r"^  (?:-h, )?(--[\w-]+)", proc.stdout, re.MULTILINE))
    assert listed == OPTIONS[command] | {"--help"}
    assert "DATA_DIR" in proc.stdout


def test_shared_options_read_the_same_in_both():
    shared = ["DATA", "--arch", "time", "--folds", "3", "--preset", "paper", "--protocol",
              "paper", "--device", "cpu", "--epochs", "7", "--lr", "0.5", "--batch-size",
              "16", "--amp"]
    train = RunRequest.from_args(build_parser().parse_args(
        ["train", *shared, "--time-filter", "1x30", "--n-filters", "16", "--seed", "2"]))
    sweep = SweepRequest.from_args(build_parser().parse_args(
        ["sweep", *shared, "--time-filter", "1x30,1x60", "--n-filters", "16,32",
         "--seeds", "2,3"]))
    assert sweep.request(sweep.points()[0]) == train
    assert (train.n_folds, train.preset, train.protocol, train.device, train.epochs, train.lr,
            train.batch_size, train.amp) == (3, "paper", "paper", "cpu", 7, 0.5, 16, True)
    assert sweep.grid == (("time_filter", ((1, 30), (1, 60))), ("n_filters", (16, 32)))
    assert sweep.seeds == (2, 3)
    plain = RunRequest.from_args(build_parser().parse_args(["train", "D", "--arch", "time"]))
    assert (plain.epochs, plain.lr, plain.batch_size, plain.amp, plain.seed) == (
        None, None, None, False, 0)
