"""The pre-launch run-time estimate (tfcnn.estimate): its factors, and a real run against it."""

from __future__ import annotations

import json

import pytest

from tfcnn.cache import load_features
from tfcnn.config import PRESETS
from tfcnn.datasets import load_dataset
from tfcnn.estimate import (
    ESTIMATE_DIR,
    THROUGHPUT_FILE,
    EpochRange,
    FoldSizes,
    RunEstimate,
    StageEstimate,
    Throughput,
    benchmark_throughput,
    epoch_range,
    estimate_run,
    fold_sizes,
    format_estimate,
    measured_throughput,
    track_patch_counts,
)
from tfcnn.features import to_patches
from tfcnn.request import RunRequest
from tfcnn.result_sets import TableFile
from tfcnn.runs import read_run
from tfcnn.train import train_run

QUICK = PRESETS["quick"]


def test_patch_counts_from_headers_match_the_front_end(folder_dataset):
    dataset = load_dataset(folder_dataset)
    counts = track_patch_counts(dataset)
    specs = load_features(dataset, workers=1).specs
    assert counts.tolist() == [to_patches(s).shape[0] for s in specs]
    assert counts.min() > 0


TABLE = TableFile({"label": "trained on tiny", "recipe": {"preset": "quick"}, "rows": [
    {"arch": "time", "max_epochs": 150, "n_folds_capped": 0, "epochs_per_fold": [40, 60]},
    {"arch": "frequency", "max_epochs": 150, "n_folds_capped": 0, "epochs_per_fold": [50, 70]},
]})


def test_epoch_range_from_the_table_then_the_schedule(tmp_path):
    r = epoch_range("time", QUICK, root=tmp_path, table=TABLE)
    assert (r.low, r.high) == (40, 60) and "time's folds" in r.source
    # a lower cap cuts the same folds short
    r = epoch_range("time", QUICK.with_overrides(max_epochs=50), root=tmp_path, table=TABLE)
    assert (r.low, r.high) == (40, 50)
    # a cap below every fold: the cap is the answer, and the source says so
    r = epoch_range("time", QUICK.with_overrides(max_epochs=2), root=tmp_path, table=TABLE)
    assert (r.low, r.high) == (2, 2) and r.source.startswith("the epoch cap")
    # a model without a row: every row's folds, said so
    r = epoch_range("blackbox", QUICK, root=tmp_path, table=TABLE)
    assert (r.low, r.high) == (40, 70) and "no blackbox row" in r.source
    # another preset: the table does not apply; the schedule's bounds do
    paper = PRESETS["paper"]
    r = epoch_range("time", paper, root=tmp_path, table=TABLE)
    assert (r.low, r.high) == (paper.stop_patience + 2, paper.max_epochs)
    assert "schedule" in r.source
    # folds that ran to a cap below ours do not tell how long they would have gone
    capped = TableFile({**TABLE.content,
                        "rows": [{**TABLE.rows[0], "max_epochs": 60, "n_folds_capped": 1}]})
    r = epoch_range("time", QUICK, root=tmp_path, table=capped)
    assert (r.low, r.high) == (QUICK.stop_patience + 2, QUICK.max_epochs)


def test_estimate_text_shows_the_costs_it_prices_with():
    # a one-fold benchmark that came out faster than the stack (a busy machine) does not
    # lower the high end, and the text shows the cost used, not an inverted range
    stage = StageEstimate("time", EpochRange(2, 2, "cap"),
                          Throughput(3.14e-3, "benchmark", "stack"),
                          Throughput(0.27e-3, "benchmark", "one fold"))
    estimate = RunEstimate(FoldSizes(train=(1000, 1000), val=(100, 100)), (stage,))
    assert estimate.low_s == estimate.high_s == pytest.approx(2 * 2000 * 3.14e-3)
    text = format_estimate(estimate, lambda s: f"{s:.1f} s")
    assert "time: 3.14 ms per training patch" in text and "0.27" not in text.split("(")[0]
    assert "2 epochs per fold" in text and "2–2" not in text
    slower = StageEstimate("time", EpochRange(1, 3, "cap"),
                           Throughput(1e-3, "benchmark", "stack"),
                           Throughput(4e-3, "benchmark", "one fold"))
    text = format_estimate(RunEstimate(FoldSizes((10,), (1,)), (slower,)), str)
    assert "1–4 ms per training patch" in text and "1–3 epochs per fold" in text
    # a one-fold benchmark 44 times the stack's (seen on a loaded machine) is capped at the
    # stack's size times the stack's cost: the whole stack's step does at least its work
    noisy = StageEstimate("time", EpochRange(43, 85, "table"),
                          Throughput(0.423e-3, "benchmark", "10 stacked folds"),
                          Throughput(18.8e-3, "benchmark", "1 stacked fold"), n_stacked=10)
    assert noisy.per_patch_s() == pytest.approx((0.423e-3, 4.23e-3))


def test_benchmark_is_measured_once_per_machine_and_model(tmp_path):
    first = benchmark_throughput("time", {}, n_classes=8, config=QUICK, root=tmp_path)
    assert 0 < first.seconds_per_patch < 0.1 and "just now" in first.detail
    again = benchmark_throughput("time", {}, n_classes=8, config=QUICK, root=tmp_path)
    assert again.seconds_per_patch == first.seconds_per_patch
    assert "just now" not in again.detail
    benchmark_throughput("time", {"n_filters": 8}, n_classes=8, config=QUICK, root=tmp_path)
    cache = json.loads((tmp_path / ESTIMATE_DIR / THROUGHPUT_FILE).read_text())
    assert len(cache) == 2


def test_estimate_brackets_a_real_run(synth_dataset, tmp_path):
    """The estimate made before a real 2-fold run of 3 epochs against that run's training
    time: generous (3x either way), but a throughput off by 10x fails."""
    dataset = load_dataset(synth_dataset)
    root = tmp_path / "runs"
    request = RunRequest(synth_dataset, "time", n_folds=2, protocol="clean", preset="quick",
                         epochs=3, device="cpu")
    est = estimate_run(dataset, request, root=root)
    (stage,) = est.stages
    assert (stage.epochs.low, stage.epochs.high) == (3, 3)  # the cap decides
    assert stage.throughput.source == "benchmark"
    train_run(request, root / "run")
    run = read_run(root / "run")
    starts = {e["fold"]: e for e in run.events if e["event"] == "fold_start"}
    sizes = fold_sizes(dataset, n_folds=2, protocol="clean")
    assert sizes.train == tuple(starts[k]["n_train_patches"] for k in range(2))
    assert sizes.val == tuple(starts[k]["n_val_patches"] for k in range(2))
    trained_s = sum(e["seconds"] for e in run.epochs)
    print(f"estimate {est.low_s:.2f}-{est.high_s:.2f} s, training took {trained_s:.2f} s "
          f"(run wall {run.wall_s:.2f} s)")
    assert est.low_s / 3 <= trained_s <= est.high_s * 3
    # the run now measures the model on this machine
    measured = measured_throughput("time", {}, n_classes=8, batch_size=QUICK.batch_size,
                                   n_folds=2, device="cpu", root=root)
    assert measured is not None and measured.source == "runs"
    assert measured.seconds_per_patch == pytest.approx(
        trained_s / (3 * sizes.total_train), rel=0.5)
    again = estimate_run(dataset, request, root=root)
    assert again.stages[0].throughput.source == "runs"
    assert again.stages[0].epochs.source.startswith("folds of earlier runs")


def test_estimate_leads_with_a_likely_value_from_measured_folds(tmp_path):
    r = epoch_range("time", QUICK, root=tmp_path, table=TABLE)
    assert r.likely == 50  # the median of the table's folds (40, 60)
    assert epoch_range("time", PRESETS["paper"], root=tmp_path, table=TABLE).likely is None
    stage = StageEstimate("time", r, Throughput(1e-3, "benchmark", "stack"))
    estimate = RunEstimate(FoldSizes(train=(1000, 1000), val=(100, 100)), (stage,))
    assert estimate.likely_s == pytest.approx(50 * 2000 * 1e-3)
    text = format_estimate(estimate, lambda s: f"{s:.0f} s")
    assert text.startswith("about 100 s, likely (80 s – 120 s) of training")
    assert "40–60 epochs (likely 50) per fold" in text
    # from the schedule's bounds alone there is no likely value: the range only
    bounds = StageEstimate("time", EpochRange(10, 150, "schedule"),
                           Throughput(1e-3, "benchmark", "stack"))
    assert format_estimate(RunEstimate(estimate.sizes, (bounds,)),
                           lambda s: f"{s:.0f} s").startswith("about 20 s – 300 s of")


def test_a_run_that_disagrees_with_the_benchmark_has_it_measured_again(synth_dataset,
                                                                       tmp_path):
    """A cached benchmark 1000 times too slow (planted), then a real run here: the next
    estimate measures again and says why; one measured after the run is kept."""
    dataset = load_dataset(synth_dataset)
    root = tmp_path / "runs"
    two = RunRequest(synth_dataset, "time", n_folds=2, protocol="clean", preset="quick",
                     epochs=2, device="cpu")
    estimate_run(dataset, two, root=root)  # caches the benchmarks of this setting
    cache_path = root / ESTIMATE_DIR / THROUGHPUT_FILE
    cache = json.loads(cache_path.read_text())
    for entry in cache.values():  # an old measurement, on a machine 1000 times slower
        entry.update(seconds_per_patch=entry["seconds_per_patch"] * 1000, measured_at=0.0)
    cache_path.write_text(json.dumps(cache))
    train_run(two, root / "run")
    three = two.replace(n_folds=3)  # no earlier run of 3 folds: the benchmark prices it
    (stage,) = estimate_run(dataset, three, root=root).stages
    assert stage.throughput.source == "benchmark"
    assert "re-measured: run run trained at" in stage.throughput.detail
    fresh = json.loads(cache_path.read_text())
    assert all(e["measured_at"] > 0 for e in fresh.values())
    assert max(e["seconds_per_patch"] for e in fresh.values()) < min(
        e["seconds_per_patch"] for e in cache.values()) / 10
    (again,) = estimate_run(dataset, three, root=root).stages
    assert "re-measured" not in again.throughput.detail
    assert again.throughput.seconds_per_patch == stage.throughput.seconds_per_patch
