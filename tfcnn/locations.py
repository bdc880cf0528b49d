"""Where the project's folders are: the default data set, training runs, shipped models.

Each has a default inside the repository and an environment variable that overrides it, so
tests, benchmarks and users can point the CLI and the app anywhere. Relative values resolve
against the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (``app.py`` lives here).
REPO_ROOT = Path(__file__).resolve().parents[1]

ENV_DATA_DIR = "TFCNN_DATA_DIR"
ENV_RUNS_DIR = "TFCNN_RUNS_DIR"
ENV_CHECKPOINTS_DIR = "TFCNN_CHECKPOINTS_DIR"

#: The project's data folder (always an allowed root of :mod:`tfcnn.paths`).
DATA_DIR = REPO_ROOT / "data"
#: Where ``make data`` / ``make run`` generate the embedded SynthBallroom.
DEFAULT_DATA_DIR = DATA_DIR / "synth-ballroom"
#: Where training runs go.
DEFAULT_RUNS_DIR = REPO_ROOT / "runs"
#: The shipped models and Table 1 (``make checkpoints``).
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"
#: The shipped Table 1, in the checkpoints folder.
SHIPPED_TABLE = "table1-synth.json"
#: The shipped models' calibration measured on their test songs (scripts/shipped_reliability).
SHIPPED_RELIABILITY = "reliability-synth.json"
#: The shipped models' cue-conflict report (python -m tfcnn conflict).
SHIPPED_CONFLICT = "cue-conflict-synth.json"


def _from_env(var: str, default: Path) -> Path:
    value = os.environ.get(var, "").strip()
    path = Path(value).expanduser() if value else default
    return path if path.is_absolute() else REPO_ROOT / path


def default_data_dir() -> Path:
    """The embedded SynthBallroom folder (``$TFCNN_DATA_DIR`` or :data:`DEFAULT_DATA_DIR`)."""
    return _from_env(ENV_DATA_DIR, DEFAULT_DATA_DIR)


def runs_root() -> Path:
    """Folder holding the training runs (``$TFCNN_RUNS_DIR`` or :data:`DEFAULT_RUNS_DIR`)."""
    return _from_env(ENV_RUNS_DIR, DEFAULT_RUNS_DIR)


def checkpoints_dir() -> Path:
    """Folder of the shipped models (``$TFCNN_CHECKPOINTS_DIR`` or :data:`CHECKPOINTS_DIR`)."""
    return _from_env(ENV_CHECKPOINTS_DIR, CHECKPOINTS_DIR)
