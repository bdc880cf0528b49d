"""Fold-parallel training (tfcnn.parallel) against the sequential reference (train_fold).

Known answers: without dropout a fold trained in the stack follows exactly (to float rounding)
the trajectory ``train_fold`` gives it: same data order, same per-epoch losses, accuracies,
learning rates, stop epoch and weights. With dropout (masks drawn differently) the results
agree statistically.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tfcnn.config import TrainConfig
from tfcnn.errors import ConfigError
from tfcnn.models import build_model
from tfcnn.parallel import (
    STACKED_FORWARDS,
    choose_kernel,
    stacked_forward,
    train_folds_parallel,
)
from tfcnn.train import FoldData, evaluate_patches, train_fold

#: Training sizes that differ and are not multiples of the batch (10): uneven step counts
#: and partial last minibatches.
SIZES = (45, 62, 51)
EPOCH_KEYS = {"event", "fold", "epoch", "train_loss", "train_acc", "val_loss", "val_acc",
              "lr", "seconds"}


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: batch-10 steps gain nothing from a second one, and on a busy
    machine a second thread mostly waits (keeps this file's runtime steady)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def fold_datas(sizes=SIZES, *, n_val: int = 30, seed: int = 0) -> list[FoldData]:
    """Random folds whose class sets a sinusoid's period along time (learnable in a few epochs)."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.arange(80, dtype=torch.float32)
    datas = []
    for k, n in enumerate(sizes):
        y = torch.randint(0, 8, (n + n_val,), generator=g)
        period = 40.0 / (y + 2).float()  # (n,) frames per cycle, one per class
        x = torch.randn(n + n_val, 1, 40, 80, generator=g)
        x += torch.sin(2 * math.pi * frames / period.view(-1, 1, 1, 1))  # (n, 1, 40, 80)
        datas.append(FoldData(fold=k, train_x=x[:n], train_y=y[:n], val_x=x[n:], val_y=y[n:],
                              seed=7 + k))
    return datas


def fresh_models(arch: str, datas, **arch_params) -> list[torch.nn.Module]:
    """One model per fold, initialised with the fold's seed (as train_run does)."""
    models = []
    for data in datas:
        torch.manual_seed(data.seed)
        models.append(build_model(arch, 8, **arch_params))
    return models


def sequential(arch, datas, config, **arch_params):
    models = fresh_models(arch, datas, **arch_params)
    return models, [train_fold(m, d, config, device="cpu") for m, d in zip(models, datas)]


def assert_same_training(seq, par, seq_models, par_models, *, atol=1e-4):
    for a, b, ma, mb in zip(seq, par, seq_models, par_models):
        assert len(a.history) == len(b.history)
        assert a.best_epoch == b.best_epoch
        for ra, rb in zip(a.history, b.history):
            assert set(rb) == EPOCH_KEYS
            assert (ra["fold"], ra["epoch"], ra["lr"]) == (rb["fold"], rb["epoch"], rb["lr"])
            assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-4, abs=1e-6)
            assert rb["val_loss"] == pytest.approx(ra["val_loss"], rel=1e-4, abs=1e-6)
            assert rb["train_acc"] == pytest.approx(ra["train_acc"], abs=1e-9)
            assert rb["val_acc"] == pytest.approx(ra["val_acc"], abs=1e-9)
        assert a.state_dict.keys() == b.state_dict.keys()
        for key in a.state_dict:
            assert b.state_dict[key].device.type == "cpu"
            torch.testing.assert_close(b.state_dict[key], a.state_dict[key], atol=atol, rtol=1e-4)
        # Last-epoch weights too: a fold is left as train_fold leaves its model.
        for (_, pa), (_, pb) in zip(ma.state_dict().items(), mb.state_dict().items()):
            torch.testing.assert_close(pb, pa, atol=atol, rtol=1e-4)


@pytest.mark.parametrize("arch", ["time", "frequency", "timefreq"])
def test_matches_sequential_without_dropout(arch):
    """Uneven fold sizes, 2 epochs: the same trajectory per fold as train_fold."""
    datas = fold_datas()
    config = TrainConfig(lr=0.02, max_epochs=2)
    seq_models, seq = sequential(arch, datas, config, dropout=0.0)
    par_models = fresh_models(arch, datas, dropout=0.0)
    records = []
    par = train_folds_parallel(par_models, datas, config, device="cpu", on_epoch=records.append)
    assert_same_training(seq, par, seq_models, par_models)
    assert [(r["fold"], r["epoch"]) for r in records] == [
        (f, e) for e in (1, 2) for f in range(len(SIZES))]


def test_vmap_kernel_matches_sequential():
    """The generic kernel (vmap of the module's own forward) follows train_fold too."""
    datas = fold_datas(sizes=(45, 52))
    config = TrainConfig(lr=0.02, max_epochs=2)
    seq_models, seq = sequential("time", datas, config, dropout=0.0)
    par_models = fresh_models("time", datas, dropout=0.0)
    par = train_folds_parallel(par_models, datas, config, device="cpu", kernel="vmap")
    assert_same_training(seq, par, seq_models, par_models)


def test_early_stopped_fold_stops_updating():
    """With lr 0.3 some folds diverge (stop after epoch 2) while others train on.

    A stopped fold leaves the stack: its history ends, its final weights are those of its
    last epoch (as train_fold's), and its kept state is its best epoch's.
    """
    datas = fold_datas(sizes=(95, 120, 101))
    config = TrainConfig(lr=0.3, max_epochs=4, stop_patience=0, halve_patience=0)
    seq_models, seq = sequential("time", datas, config, dropout=0.0)
    par_models = fresh_models("time", datas, dropout=0.0)
    par = train_folds_parallel(par_models, datas, config, device="cpu")
    lengths = [len(r.history) for r in par]
    assert min(lengths) < config.max_epochs == max(lengths), lengths
    assert_same_training(seq, par, seq_models, par_models, atol=1e-3)
    for result, data in zip(par, datas):
        model = build_model("time", 8, dropout=0.0)
        model.load_state_dict(result.state_dict)
        _, val_acc = evaluate_patches(model, data.val_x, data.val_y)
        assert val_acc == result.history[result.best_epoch - 1]["val_acc"]


def test_with_dropout_statistically_same():
    """With dropout the masks differ from a sequential run; accuracies still agree."""
    datas = fold_datas(sizes=(100, 110, 90), n_val=60)
    config = TrainConfig(lr=0.05, max_epochs=2)
    _, seq = sequential("time", datas, config)
    par = train_folds_parallel(fresh_models("time", datas), datas, config, device="cpu")
    seq_acc = np.array([r.history[-1]["val_acc"] for r in seq])
    par_acc = np.array([r.history[-1]["val_acc"] for r in par])
    assert seq_acc.min() > 0.5 and par_acc.min() > 0.5  # chance is 1/8
    assert abs(seq_acc.mean() - par_acc.mean()) < 0.15, (seq_acc, par_acc)
    # Different masks, so not the very same trajectory (the data order is the same).
    assert any(a.history[0]["train_loss"] != b.history[0]["train_loss"] for a, b in zip(seq, par))


@pytest.mark.parametrize("arch,kernel", [("time", "auto"), ("frequency", "auto"),
                                         ("timefreq", "auto"), ("blackbox", "auto"),
                                         ("blackbox", "vmap")])
def test_all_architectures_one_epoch(arch, kernel):
    datas = fold_datas(sizes=(23, 17), n_val=8)
    models = fresh_models(arch, datas)
    records = []
    results = train_folds_parallel(models, datas, TrainConfig(max_epochs=1), device="cpu",
                                   on_epoch=records.append, kernel=kernel)
    assert len(results) == 2 and len(records) == 2
    for result, model, data in zip(results, models, datas):
        assert result.best_epoch == 1 and len(result.history) == 1
        assert set(result.history[0]) == EPOCH_KEYS
        assert result.history[0]["fold"] == data.fold
        assert math.isfinite(result.history[0]["train_loss"])
        assert result.state_dict.keys() == model.state_dict().keys()


def test_kernel_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_kernel(build_model("time"), cpu) == "banded"
    assert choose_kernel(build_model("timefreq"), cpu) == "banded"
    assert choose_kernel(build_model("blackbox"), cpu) == "loop"
    assert choose_kernel(build_model("blackbox"), cuda) == "vmap"
    # A 2×60 "temporal" filter is not banded along one axis: generic path.
    assert choose_kernel(build_model("time", time_filter=(2, 60)), cpu) == "loop"
    with pytest.raises(ConfigError, match="banded"):
        choose_kernel(build_model("blackbox"), cpu, "banded")
    with pytest.raises(ConfigError, match="'fast'"):
        choose_kernel(build_model("time"), cpu, "fast")


@pytest.mark.parametrize("arch,params", [("time", {}), ("time", {"time_filter": (1, 30)}),
                                         ("frequency", {}), ("frequency", {"freq_filter": (20, 1)}),
                                         ("timefreq", {})])
def test_banded_forward_equals_module_forward(arch, params):
    """The stacked banded forward is each fold's module forward (eval mode: no dropout)."""
    assert arch in STACKED_FORWARDS
    from torch.func import stack_module_state

    models = []
    for k in range(3):
        torch.manual_seed(k)
        models.append(build_model(arch, 8, **params).eval())
    stacked, buffers = stack_module_state(models)
    x = torch.randn(3, 5, 1, 40, 80)  # (K, B, 1, n_mels, frames)
    with torch.no_grad():
        got = stacked_forward(models[0], "banded")(stacked, buffers, x)  # (K, B, 8)
        want = torch.stack([m(x[k]) for k, m in enumerate(models)])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_bad_inputs():
    datas = fold_datas(sizes=(20, 20), n_val=5)
    config = TrainConfig(max_epochs=1)
    with pytest.raises(ConfigError, match="one model per fold, got 1 models for 2 folds"):
        train_folds_parallel(fresh_models("time", datas[:1]), datas, config, device="cpu")
    mixed = [build_model("time"), build_model("frequency")]
    with pytest.raises(ConfigError, match="one architecture; model 1 \\(frequency\\)"):
        train_folds_parallel(mixed, datas, config, device="cpu")
    with pytest.raises(ConfigError, match="at least one fold"):
        train_folds_parallel([], [], config, device="cpu")
    empty = FoldData(fold=4, train_x=torch.zeros(0, 1, 40, 80),
                     train_y=torch.zeros(0, dtype=torch.long), val_x=datas[0].val_x,
                     val_y=datas[0].val_y, seed=1)
    with pytest.raises(ConfigError, match="fold 4: no training patches"):
        train_folds_parallel(fresh_models("time", [datas[0], empty]), [datas[0], empty],
                             config, device="cpu")
