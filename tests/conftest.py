"""Shared fixtures: real audio files written to disk, small enough for a quick test suite;
and the ``safety`` marks of the safety probes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tfcnn.config import CLASSES

SAMPLE_RATE = 44100


def click_track(*, bpm: float, seconds: float, sample_rate: int = SAMPLE_RATE,
                pitch_hz: float = 1000.0, seed: int = 0) -> np.ndarray:
    """A decaying sine click on every beat plus a little noise, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    y = 0.01 * rng.standard_normal(n)
    t = np.arange(int(0.05 * sample_rate)) / sample_rate
    click = np.sin(2 * np.pi * pitch_hz * t) * np.exp(-t * 80.0)
    for start in np.arange(0.0, seconds, 60.0 / bpm):
        i = int(start * sample_rate)
        j = min(n, i + click.size)
        y[i:j] += click[: j - i]
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


@pytest.fixture(scope="session")
def folder_dataset(tmp_path_factory) -> Path:
    """A folder-per-class data set: 8 classes x 3 tracks x 6 s of click tracks.

    Each class has its own tempo and click pitch, so both temporal and spectral models can
    learn it quickly.
    """
    root = tmp_path_factory.mktemp("folder_dataset")
    for label, dance in enumerate(CLASSES):
        (root / dance).mkdir()
        for k in range(3):
            y = click_track(bpm=70 + 20 * label + 2 * k, seconds=6.0,
                            pitch_hz=300.0 + 150.0 * label, seed=10 * label + k)
            sf.write(root / dance / f"{dance}-{k}.wav", y, SAMPLE_RATE, subtype="PCM_16")
    return root


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory) -> Path:
    """A tiny SynthBallroom (8 dances x 4 tracks x 8 s), generated once per session."""
    from tfcnn.synth import generate

    root = tmp_path_factory.mktemp("synth") / "synth-ballroom"
    generate(root, per_class=4, seconds=8.0, seed=0, workers=2, progress=False)
    return root


# ----------------------------------------------------------------------------- safety probes

#: Name of the module-level table of safety probes a test module may hold: test name (with
#: its parameter id, or without to cover every parameter) → one row or a list of rows, each a
#: dict with ``probe`` (the hostile or unlucky input), ``before`` (what an earlier version
#: did) and ``must`` (what it must do now).
SAFETY_TABLE = "SAFETY_PROBES"


def _table_rows(item) -> list[dict]:
    table = getattr(item.module, SAFETY_TABLE, None) or {}
    rows = table.get(item.name) or table.get(getattr(item, "originalname", item.name)) or []
    return [rows] if isinstance(rows, dict) else list(rows)


# ----------------------------------------------------------------------------- test tiers

#: End-to-end modules: every test starts a server, a browser, a benchmark or a measured run.
SLOW_MODULES = frozenset({"test_browser", "test_serve", "test_sweep_measure", "test_bench",
                          "test_essentia"})

#: End-to-end tests in otherwise fast modules (module → test names, parameters included):
#: training runs in subprocesses, kills and resumes, Ray, a 3 h file, a real safety report.
SLOW_TESTS = {
    "test_train": {
        "test_resume_keeps_complete_folds_and_matches_an_uninterrupted_run",
        "test_sigterm_cancels_cleanly_and_keeps_the_epochs_for_resume",
        "test_kill_9_mid_fold_then_resume_continues_from_the_saved_epoch",
        "test_full_disk_fails_with_one_line_and_resumes_after_space_is_freed",
        "test_shipped_recipe_script_on_a_tiny_set",
    },
    "test_sweep": {
        "test_local_sweep_writes_run_folders_that_table_reads_and_resumes",
        "test_ray_sweep_of_two_shapes_two_seeds_two_folds",
        "test_ray_killed_task_is_reported_others_kept_then_resumed",
        "test_ray_retries_a_task_whose_worker_died",
    },
    "test_safety_report": {"test_a_real_run_of_two_safety_tests_writes_the_table"},
    "test_bad_inputs": {"test_cli_predicts_a_three_hour_flac_in_bounded_memory",
                        "test_features_sigterm_leaves_no_worker"},
    "test_app": {"test_train_launches_a_run_and_shows_it_finishing",
                 "test_train_runs_one_at_a_time_and_queues_the_rest",
                 "test_train_cancel_stops_the_subprocess",
                 "test_train_resume_archive_restore_delete"},
}


def is_slow(module: str, test: str) -> bool:
    """Whether ``module::test`` (without its parameter id) is in the ``slow`` tier."""
    return module in SLOW_MODULES or test in SLOW_TESTS.get(module, ())


def pytest_collection_modifyitems(config, items):
    """Mark the end-to-end tests ``slow`` (:data:`SLOW_MODULES`, :data:`SLOW_TESTS`); mark
    the tests of each module's :data:`SAFETY_TABLE` ``safety``, and put every safety row of a
    test (table or ``@pytest.mark.safety(probe=..., before=..., must=...)``) in its report's
    properties, where ``scripts/safety_report.py`` reads them (junit XML)."""
    for item in items:
        if is_slow(item.module.__name__.rpartition(".")[2],
                   getattr(item, "originalname", item.name)):
            item.add_marker(pytest.mark.slow)
        for row in _table_rows(item):
            item.add_marker(pytest.mark.safety(**row))
        for mark in item.iter_markers("safety"):
            row = {"probe": mark.kwargs.get("probe") or _first_doc_line(item) or item.name,
                   "before": mark.kwargs.get("before", ""), "must": mark.kwargs.get("must", "")}
            item.user_properties.append(("safety", json.dumps(row, ensure_ascii=False)))


def _first_doc_line(item) -> str:
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
