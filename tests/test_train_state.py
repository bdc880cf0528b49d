"""Resumable training state (tfcnn.train_state) in both training loops.

Known answers: a fold trained k epochs, stopped, and continued from its saved state to N
epochs ends bit for bit where an uninterrupted N-epoch fold ends (same device, one thread),
in the sequential loop and in the fold-parallel stack, dropout included; a state saved by
another configuration is refused, naming the difference.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from tfcnn.config import PRESETS
from tfcnn.errors import RunError
from tfcnn.fold_training import train_fold
from tfcnn.parallel import train_folds_parallel
from tfcnn.train_state import (
    FoldStateFile,
    data_fingerprint,
    fold_identity,
    rng_state,
    set_rng_state,
)

from test_parallel import fold_datas, fresh_models

#: A rate high enough for the loss to rise and the schedule to halve it within 8 epochs.
CONFIG = PRESETS["quick"].with_overrides(max_epochs=8, lr=0.2, stop_patience=30,
                                        halve_patience=0)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Stop(Exception):
    """Raised from ``on_epoch`` to stop training after an epoch has been saved."""


def stop_after(epoch: int, fold: int | None = None):
    def on_epoch(record):
        if record["epoch"] == epoch and fold in (None, record["fold"]):
            raise Stop

    return on_epoch


def identity(data, *, stage="time", params=None):
    return fold_identity(fold=data.fold, stage=stage, stage_params=params or {"n_filters": 4},
                         train_config=CONFIG.to_dict(), seed=data.seed, test_fingerprint="t",
                         norm=(0.0, 1.0), data=data_fingerprint(data.train_x, data.train_y,
                                                                 data.val_x, data.val_y))


def state_files(tmp_path, datas, name="state"):
    return [FoldStateFile(tmp_path / name / f"fold-{d.fold}.pt", identity(d)) for d in datas]


def timeless(history):
    """Epoch records without their wall time."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def assert_same(a, b):
    """Two FoldTraining results and their models' last weights are identical."""
    (ra, ma), (rb, mb) = a, b
    assert timeless(ra.history) == timeless(rb.history)
    assert ra.best_epoch == rb.best_epoch
    for key in ra.state_dict:
        assert torch.equal(ra.state_dict[key], rb.state_dict[key]), key
    for (_, x), (_, y) in zip(ma.state_dict().items(), mb.state_dict().items()):
        assert torch.equal(x, y)


def test_sequential_fold_resumed_mid_training_equals_an_uninterrupted_one(tmp_path):
    data, = fold_datas((45,))
    model = fresh_models("time", [data], n_filters=4)[0]
    whole = train_fold(model, data, CONFIG, device="cpu")
    assert len(whole.history) == CONFIG.max_epochs
    assert len({r["lr"] for r in whole.history}) > 1  # the schedule acted: its state matters

    state, = state_files(tmp_path, [data])
    first = fresh_models("time", [data], n_filters=4)[0]
    with pytest.raises(Stop):
        train_fold(first, data, CONFIG, device="cpu", on_epoch=stop_after(3), state=state)
    # Other draws in between: the resumed fold must not depend on them.
    torch.manual_seed(123), np.random.seed(5), random.seed(9)
    resumed_model = fresh_models("time", [data], n_filters=4)[0]
    again, = state_files(tmp_path, [data])
    assert again.load()["tracker"]["history"][-1]["epoch"] == 3
    records = []
    resumed = train_fold(resumed_model, data, CONFIG, device="cpu", on_epoch=records.append,
                         state=again)
    assert [r["epoch"] for r in records] == list(range(4, CONFIG.max_epochs + 1))
    assert_same((whole, model), (resumed, resumed_model))

    # A finished fold's state is returned as it is, without training.
    done, = state_files(tmp_path, [data])
    records.clear()
    final = fresh_models("time", [data], n_filters=4)[0]
    assert_same((whole, model), (train_fold(final, data, CONFIG, device="cpu",
                                            on_epoch=records.append, state=done), final))
    assert records == []


def test_stacked_folds_resumed_mid_training_equal_an_uninterrupted_stack(tmp_path):
    datas = fold_datas((45, 62, 51))
    # Fold 2 stops at epoch 4: the resumed stack must leave it out as the uninterrupted one
    # had; fold 1 stops at epoch 6, after the interruption.
    config = CONFIG.with_overrides(stop_patience=2)
    models = fresh_models("time", datas, n_filters=4)
    whole = train_folds_parallel(models, datas, config, device="cpu")
    assert [len(r.history) for r in whole] == [8, 6, 4]

    # Stopped after the stack's epoch 5 is saved (fold 1 is the last fold of it).
    states = state_files(tmp_path, datas)
    with pytest.raises(Stop):
        train_folds_parallel(fresh_models("time", datas, n_filters=4), datas, config,
                             device="cpu", on_epoch=stop_after(5, fold=1), states=states)
    torch.manual_seed(321)
    resumed_models = fresh_models("time", datas, n_filters=4)
    records = []
    resumed = train_folds_parallel(resumed_models, datas, config, device="cpu",
                                   on_epoch=records.append, states=state_files(tmp_path, datas))
    assert [(r["fold"], r["epoch"]) for r in records] == [(0, 6), (1, 6), (0, 7), (0, 8)]
    for a, ma, b, mb in zip(whole, models, resumed, resumed_models):
        assert_same((a, ma), (b, mb))

    # Stopped between two folds' saves (fold 0 saved epoch 5, fold 1 still at 4): each fold
    # continues from its own epoch, every epoch reported once.
    states = state_files(tmp_path, datas, name="apart")
    with pytest.raises(Stop):
        train_folds_parallel(fresh_models("time", datas, n_filters=4), datas, config,
                             device="cpu", on_epoch=stop_after(5, fold=0), states=states)
    records = []
    apart = train_folds_parallel(fresh_models("time", datas, n_filters=4), datas, config,
                                 device="cpu", on_epoch=records.append,
                                 states=state_files(tmp_path, datas, name="apart"))
    assert [r["epoch"] for r in records if r["fold"] == 1][0] == 5
    assert [r["epoch"] for r in records if r["fold"] == 0][0] == 6
    for result in apart:
        assert [r["epoch"] for r in result.history] == list(range(1, len(result.history) + 1))
    assert timeless(apart[2].history) == timeless(whole[2].history)  # finished before the stop: kept as it was


def test_state_of_another_configuration_is_refused(tmp_path):
    data, = fold_datas((45,))
    state, = state_files(tmp_path, [data])
    with pytest.raises(Stop):
        train_fold(fresh_models("time", [data], n_filters=4)[0], data, CONFIG, device="cpu",
                   on_epoch=stop_after(1), state=state)
    path = state.path
    assert FoldStateFile(path, identity(data)).load() is not None

    other_data = fold_datas((45,), seed=1)[0]
    other_data.fold, other_data.seed = data.fold, data.seed
    cases = {
        "stage_params": identity(data, params={"n_filters": 8}),
        "stage": identity(data, stage="frequency"),
        "data_fingerprint": identity(other_data),
        "seed": {**identity(data), "seed": 99},
        "test_fingerprint": {**identity(data), "test_fingerprint": "other songs"},
    }
    for key, wanted in cases.items():
        with pytest.raises(RunError, match=f"saved by another configuration \\({key}: saved"):
            FoldStateFile(path, wanted).load()
    path.write_bytes(b"not a state")
    with pytest.raises(RunError, match="unreadable training state"):
        FoldStateFile(path, identity(data)).load()


def test_rng_state_round_trip():
    generator = torch.Generator().manual_seed(1)
    saved = rng_state(generator)
    draws = (torch.rand(3), torch.randperm(9, generator=generator), np.random.rand(2),
             random.random())
    torch.manual_seed(0), np.random.seed(0), random.seed(0), generator.manual_seed(0)
    set_rng_state(saved, generator)
    again = (torch.rand(3), torch.randperm(9, generator=generator), np.random.rand(2),
             random.random())
    assert torch.equal(draws[0], again[0]) and torch.equal(draws[1], again[1])
    assert np.array_equal(draws[2], again[2]) and draws[3] == again[3]


def test_blackbox_lanes_resumed_equal_an_uninterrupted_run(tmp_path):
    """Black-box folds on two lanes, dropout on, stopped after an epoch and resumed: the same
    folds bit for bit (each fold's dropout masks come from its own seed and epoch)."""
    datas = fold_datas((23, 31, 17))
    config = CONFIG.with_overrides(max_epochs=3, lr=0.02)
    whole = train_folds_parallel(fresh_models("blackbox", datas), datas, config, device="cpu",
                                 lanes=2)
    states = state_files(tmp_path, datas)
    with pytest.raises(Stop):
        train_folds_parallel(fresh_models("blackbox", datas), datas, config, device="cpu",
                             lanes=2, on_epoch=stop_after(2, fold=1), states=states)
    resumed = train_folds_parallel(fresh_models("blackbox", datas), datas, config,
                                   device="cpu", lanes=2, states=state_files(tmp_path, datas))
    for a, b in zip(whole, resumed):
        assert timeless(a.history) == timeless(b.history)
        for key in a.state_dict:
            assert torch.equal(a.state_dict[key], b.state_dict[key]), key
