"""Fold-parallel training (tfcnn.parallel) against the sequential reference (train_fold).

Known answers: without dropout a fold trained in the stack follows exactly (to float rounding)
the trajectory ``train_fold`` gives it: same data order, same per-epoch losses, accuracies,
learning rates, stop epoch and weights. With dropout (masks drawn differently) the results
agree statistically.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from tfcnn.banded import STACKED_FORWARDS
from tfcnn.config import TrainConfig
from tfcnn.errors import ConfigError
from tfcnn.fold_training import FoldData, evaluate_patches, train_fold
from tfcnn.models import build_model
from tfcnn.parallel import (
    choose_kernel,
    stacked_forward,
    train_folds_parallel,
)

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
    par = train_folds_parallel(par_models, datas, config, device="cpu", on_epoch=records.append,
                               lanes=1)
    assert_same_training(seq, par, seq_models, par_models)
    assert [(r["fold"], r["epoch"]) for r in records] == [
        (f, e) for e in (1, 2) for f in range(len(SIZES))]


def test_banded_lanes_match_one_stack():
    """Two lanes (stacks of 2 and 1 folds on their own threads) against one stack of 3:
    without dropout both follow train_fold; with dropout (each fold's masks from its own
    seed and epoch) they are the same folds bit for bit."""
    datas = fold_datas()
    config = TrainConfig(lr=0.02, max_epochs=2)
    seq_models, seq = sequential("time", datas, config, dropout=0.0)
    par_models = fresh_models("time", datas, dropout=0.0)
    par = train_folds_parallel(par_models, datas, config, device="cpu", lanes=2)
    assert_same_training(seq, par, seq_models, par_models)
    one, two = (train_folds_parallel(fresh_models("timefreq", datas), datas, config,
                                     device="cpu", lanes=n) for n in (1, 2))
    for a, b in zip(one, two):
        for key in a.state_dict:
            torch.testing.assert_close(a.state_dict[key], b.state_dict[key], atol=1e-6,
                                       rtol=1e-6)


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
    last epoch (as train_fold's), and its kept state is its best epoch's. In float64: a
    diverging fold amplifies the two kernels' float32 rounding differences (summation order)
    to a few per cent of its weights within two epochs.
    """
    datas = [dataclasses.replace(d, train_x=d.train_x.double(), val_x=d.val_x.double())
             for d in fold_datas(sizes=(95, 120, 101))]
    config = TrainConfig(lr=0.3, max_epochs=4, stop_patience=0, halve_patience=0)
    seq_models = [m.double() for m in fresh_models("time", datas, dropout=0.0)]
    seq = [train_fold(m, d, config, device="cpu") for m, d in zip(seq_models, datas)]
    par_models = [m.double() for m in fresh_models("time", datas, dropout=0.0)]
    par = train_folds_parallel(par_models, datas, config, device="cpu")
    lengths = [len(r.history) for r in par]
    assert min(lengths) < config.max_epochs == max(lengths), lengths
    assert_same_training(seq, par, seq_models, par_models, atol=1e-3)
    for result, data in zip(par, datas):
        model = build_model("time", 8, dropout=0.0).double()
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
    assert choose_kernel(build_model("blackbox"), cpu) == "blackbox"
    assert choose_kernel(build_model("blackbox"), cuda) == "blackbox"
    # A 2×60 "temporal" filter is not banded along one axis: generic path.
    assert choose_kernel(build_model("time", time_filter=(2, 60)), cpu) == "loop"
    assert choose_kernel(build_model("time", time_filter=(2, 60)), cuda) == "vmap"
    with pytest.raises(ConfigError, match="banded"):
        choose_kernel(build_model("blackbox"), cpu, "banded")
    with pytest.raises(ConfigError, match="'blackbox' needs a blackbox model, got 'time'"):
        choose_kernel(build_model("time"), cpu, "blackbox")
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


# --------------------------------------------------------------------------- kernel pieces


def dense_conv_maxpool(weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Reference for the banded kernel: conv1d of every row, then max over the rows.

    weight (K, F, width), rows (K, B, R, L) → (K, B, P, F), through autograd's own
    conv1d and amax backward (ties aside).
    """
    k, n_filters, width = weight.shape
    _, batch, n_rows, length = rows.shape
    out = torch.stack([
        torch.nn.functional.conv1d(rows[i].reshape(batch * n_rows, 1, length),
                                   weight[i].unsqueeze(1))  # (B*R, F, P)
        for i in range(k)])
    return out.view(k, batch, n_rows, n_filters, -1).amax(dim=2).transpose(2, 3)


@pytest.mark.parametrize("rows_shape,width", [((3, 4, 40, 80), 60), ((2, 5, 80, 40), 32),
                                              ((2, 3, 7, 12), 12)])
def test_banded_kernel_matches_dense_reference(rows_shape, width):
    """Values and the weights' gradient equal a dense conv1d + max-pool (float64)."""
    from tfcnn.banded import _ConvMaxOverRows, _Workspace

    g = torch.Generator().manual_seed(0)
    rows = torch.randn(rows_shape, generator=g, dtype=torch.float64)
    weight = torch.randn((rows_shape[0], 6, width), generator=g, dtype=torch.float64)
    w1, w2 = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    got = _ConvMaxOverRows.apply(w1, rows, _Workspace())
    want = dense_conv_maxpool(w2, rows)
    torch.testing.assert_close(got, want)
    upstream = torch.randn(want.shape, generator=g, dtype=torch.float64)
    got.backward(upstream)
    want.backward(upstream)
    torch.testing.assert_close(w1.grad, w2.grad)


def test_banded_kernel_ties_go_to_the_first_row():
    """Identical rows (silence): the gradient goes to the first row, as max_pool2d's does."""
    from tfcnn.banded import _ConvMaxOverRows, _Workspace

    rows = torch.zeros(1, 1, 4, 10)
    rows[0, 0, :] = torch.arange(10.0)  # 4 identical rows: every position ties
    rows[0, 0, 0] = torch.arange(10.0) - 100.0  # row 0 loses; rows 1-3 tie
    weight = torch.ones(1, 2, 3, requires_grad=True)
    out = _ConvMaxOverRows.apply(weight, rows, _Workspace())
    out.sum().backward()
    # Each position p gets d/dw_j of rows[1, p + j], counted once (not split over the ties).
    want = torch.stack([rows[0, 0, 1, j:j + 8].sum() for j in range(3)]).expand(2, 3)
    torch.testing.assert_close(weight.grad[0], want)

    module = torch.nn.Conv2d(1, 2, (1, 3), bias=False)
    with torch.no_grad():
        module.weight.fill_(1.0)
    ref = torch.nn.functional.max_pool2d(module(rows[0].unsqueeze(1)), (4, 1))
    ref.sum().backward()
    torch.testing.assert_close(weight.grad[0], module.weight.grad.view(2, 3))


def test_first_max_rows_with_nan_stays_in_range():
    """A NaN column (a diverged fold) gives a valid row index, never garbage."""
    from tfcnn.banded import _first_max_rows

    h = torch.randn(2, 3, 5, 4)
    h[1, 2, 3, 1] = float("nan")
    values = h.amax(dim=2)
    winners = _first_max_rows(h.clone(), values)
    assert winners.dtype == torch.int64 and winners.shape == (2, 3, 4)
    assert int(winners.min()) >= 0 and int(winners.max()) <= 4
    finite = torch.isfinite(values)
    torch.testing.assert_close(
        torch.gather(h, 2, winners.unsqueeze(2)).squeeze(2)[finite], values[finite])


def test_band_matrix_is_the_convolution_matrix():
    from tfcnn.banded import _band_matrix, _Workspace

    weight = torch.randn(2, 3, 5)
    signal = torch.randn(2, 7, 12)  # (K, n, L)
    work = _Workspace()
    band = _band_matrix(weight, 12, work, torch.float32)  # (K, L, P*F), P = 8
    want = torch.stack([torch.nn.functional.conv1d(signal[k].unsqueeze(1),
                                                   weight[k].unsqueeze(1))  # (n, F, P)
                        for k in range(2)]).transpose(2, 3).reshape(2, 7, 8 * 3)
    torch.testing.assert_close(torch.bmm(signal, band), want)
    # The buffer is reused: a second call with new weights leaves no stale taps.
    band2 = _band_matrix(weight * 2, 12, work, torch.float32)
    assert band2.data_ptr() == band.data_ptr()
    torch.testing.assert_close(torch.bmm(signal, band2), 2 * want)


@pytest.mark.parametrize("p", [0.5, 0.3])
def test_dropout_keeps_units_with_probability_one_minus_p(p):
    from tfcnn.banded import _dropout

    h = torch.ones(10, 10, 672)  # K=10 folds, batch 10, 672 units
    out = _dropout(h, p, True)
    kept = out != 0
    values = out.unique().tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / (1 - p))
    assert kept.float().mean().item() == pytest.approx(1 - p, abs=0.01)
    # Folds and units draw independently: no two folds share a mask.
    masks = kept.view(10, -1)
    assert all(not torch.equal(masks[0], masks[k]) for k in range(1, 10))
    assert _dropout(h, p, False) is h


def test_amp_product_dtype():
    from tfcnn.banded import amp_product_dtype, cpu_has_native_bf16

    assert amp_product_dtype(torch.device("cpu"), TrainConfig(amp=False)) is None
    assert amp_product_dtype(torch.device("cuda"), TrainConfig(amp=True)) == torch.bfloat16
    native = cpu_has_native_bf16()
    assert amp_product_dtype(torch.device("cpu"), TrainConfig(amp=True)) == (
        torch.bfloat16 if native else None)


def test_bfloat16_products_stay_close():
    """bf16 products (AMP): the forward within bf16 rounding of the float32 one."""
    from torch.func import stack_module_state

    models = []
    for k in range(2):
        torch.manual_seed(k)
        models.append(build_model("timefreq", 8).eval())
    stacked, buffers = stack_module_state(models)
    x = torch.randn(2, 6, 1, 40, 80)
    with torch.no_grad():
        full = stacked_forward(models[0], "banded")(stacked, buffers, x)
        half = stacked_forward(models[0], "banded", torch.bfloat16)(stacked, buffers, x)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, atol=0.05, rtol=0.02)
    assert not torch.equal(half, full)  # the products really were bf16


def test_dense_weights_keep_their_layout_through_a_restack():
    """Stacked dense weights are stored (in, out)-major, also after stopped folds leave."""
    from tfcnn.parallel import _matmul_layout, _restack

    params = _matmul_layout({"hidden.weight": torch.randn(3, 200, 960, requires_grad=True),
                             "hidden.bias": torch.randn(3, 200, requires_grad=True)})
    for stacked in (params, _restack(params, torch.tensor([0, 2]))):
        weight = stacked["hidden.weight"]
        assert weight.is_leaf and weight.requires_grad
        assert weight.transpose(1, 2).is_contiguous()
    torch.testing.assert_close(_restack(params, torch.tensor([2]))["hidden.weight"][0],
                               params["hidden.weight"][2])


def test_banded_timefreq_drops_the_hidden_layers_inputs_in_training_only():
    """The fold-parallel forward applies dropout before the 200-unit layer too (as the module).

    With batch 1 and positive features, a column of a fold's ``hidden.weight`` gradient is zero
    exactly when that input unit was dropped.
    """
    from torch.func import stack_module_state

    models = []
    for k in range(4):
        torch.manual_seed(k)
        model = build_model("timefreq", 8)
        with torch.no_grad():
            for layer in model.modules():
                if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
                    layer.bias.fill_(50.0)  # every ReLU output > 0
        models.append(model)
    x = torch.randn(4, 1, 1, 40, 80)  # (K, B=1, 1, n_mels, frames)
    for training, expected in ((True, 0.5), (False, 0.0)):
        stacked, buffers = stack_module_state([m.train(training) for m in models])
        torch.manual_seed(1)
        stacked_forward(models[0], "banded")(stacked, buffers, x).sum().backward()
        grad = stacked["hidden.weight"].grad  # (K, hidden, 960)
        dropped = (grad.abs().sum(dim=1) == 0).float().mean(dim=1)  # (K,) share of inputs
        assert dropped.tolist() == pytest.approx([expected] * 4, abs=0.06)


# --------------------------------------------------------------------------- Black-box kernel


def small_blackbox_datas(sizes=(23, 31, 17), n_val=9):
    return fold_datas(sizes=sizes, n_val=n_val)


@pytest.mark.parametrize("lanes", [1, 2])
def test_blackbox_kernel_matches_sequential_without_dropout(lanes):
    """Uneven folds, 2 epochs, one lane or two threads side by side: each fold follows
    train_fold's trajectory (fused dense update, view pooling, weight-only conv backward)."""
    datas = small_blackbox_datas()
    config = TrainConfig(lr=0.02, max_epochs=2)
    seq_models, seq = sequential("blackbox", datas, config, dropout=0.0)
    par_models = fresh_models("blackbox", datas, dropout=0.0)
    records = []
    par = train_folds_parallel(par_models, datas, config, device="cpu", lanes=lanes,
                               on_epoch=records.append)
    assert_same_training(seq, par, seq_models, par_models)
    assert sorted((r["fold"], r["epoch"]) for r in records) == [
        (f, e) for f in range(3) for e in (1, 2)]


def test_blackbox_kernel_step_of_a_stack_is_each_folds_sgd_step():
    """K = 3 folds in one stack (the GPU schedule), padded slots and per-fold rates: one step
    equals each fold's own torch.optim.SGD step on its real patches."""
    from torch.func import stack_module_state

    from tfcnn.blackbox_kernel import BlackBoxKernel
    from tfcnn.parallel import _matmul_layout

    models = fresh_models("blackbox", small_blackbox_datas(), dropout=0.0)
    params, buffers = stack_module_state(models)
    params = _matmul_layout(params)
    kernel = BlackBoxKernel(build_model("blackbox", 8, dropout=0.0).train())
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(3, 6, 1, 40, 80, generator=g), torch.randint(0, 8, (3, 6), generator=g)
    mask = torch.ones(3, 6)
    mask[2, 4:] = 0.0
    lr = torch.tensor([0.01, 0.02, 0.0])  # fold 2 stands still
    loss, correct = kernel.train_step(params, buffers, x, y, mask, lr)
    for k, model in enumerate(models):
        n = int(mask[k].sum())
        optimizer = torch.optim.SGD(model.parameters(), lr=float(lr[k]))
        logits = model(x[k, :n])
        want = torch.nn.functional.cross_entropy(logits, y[k, :n])
        want.backward()
        optimizer.step()
        assert float(loss[k]) == pytest.approx(float(want.detach()), rel=1e-5)
        assert int(correct[k]) == int((logits.argmax(1) == y[k, :n]).sum())
        for name, p in model.named_parameters():
            torch.testing.assert_close(params[name][k], p.detach(), atol=1e-6, rtol=1e-5)


def test_blackbox_kernel_ties_go_to_the_first_maximum():
    """Silent input (every window ties): the gradient goes to each window's first row once,
    as max_pool2d's, and the forward equals the module's."""
    from torch.func import stack_module_state

    from tfcnn.blackbox_kernel import BlackBoxKernel
    from tfcnn.parallel import _matmul_layout

    model = fresh_models("blackbox", small_blackbox_datas()[:1], dropout=0.0)[0]
    x = torch.zeros(1, 4, 1, 40, 80)
    x[0, :, :, :, 40:] = torch.randn(4, 1, 40, 40)  # half silent, half not
    y = torch.tensor([[1, 2, 3, 4]])
    params, buffers = stack_module_state([model])
    params = _matmul_layout(params)
    kernel = BlackBoxKernel(build_model("blackbox", 8, dropout=0.0).train())
    with torch.no_grad():
        torch.testing.assert_close(kernel.forward(params, buffers, x)[0], model(x[0]))
    kernel.train_step(params, buffers, x, y, torch.ones(1, 4), torch.tensor([0.1]))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(model(x[0]), y[0]).backward()
    optimizer.step()
    torch.testing.assert_close(params["conv.weight"][0], model.conv.weight.detach(),
                               atol=1e-6, rtol=1e-5)


def test_blackbox_lanes_give_the_same_folds_with_dropout():
    """Dropout masks come from each fold's (seed, epoch): one lane or two, the same folds
    bit for bit; and not the trajectory without dropout."""
    datas = small_blackbox_datas()
    config = TrainConfig(lr=0.02, max_epochs=2)
    one = train_folds_parallel(fresh_models("blackbox", datas), datas, config, device="cpu",
                               lanes=1)
    two = train_folds_parallel(fresh_models("blackbox", datas), datas, config, device="cpu",
                               lanes=2)
    for a, b in zip(one, two):
        assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
        for key in a.state_dict:
            assert torch.equal(a.state_dict[key], b.state_dict[key]), key
    plain = train_folds_parallel(fresh_models("blackbox", datas, dropout=0.0), datas, config,
                                 device="cpu", lanes=1)
    assert all(a.history[0]["train_loss"] != b.history[0]["train_loss"]
               for a, b in zip(one, plain))


def test_a_failing_lane_stops_the_others_and_raises():
    """An error in one lane's bookkeeping reaches the caller; the other lane ends early."""
    datas = small_blackbox_datas(sizes=(23, 31, 17, 20))
    seen = []

    def on_epoch(record):
        seen.append(record["fold"])
        if record["fold"] == 1:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        train_folds_parallel(fresh_models("blackbox", datas), datas,
                             TrainConfig(max_epochs=3), device="cpu", lanes=2,
                             on_epoch=on_epoch)
    assert 3 not in seen  # the last fold never started


def test_blackbox_bfloat16_products_stay_close():
    """AMP: the bf16 forward within bf16 rounding of the float32 one, and one step's update
    of the dense layer close to the float32 step's."""
    from torch.func import stack_module_state

    from tfcnn.blackbox_kernel import BlackBoxKernel
    from tfcnn.parallel import _matmul_layout

    models = fresh_models("blackbox", small_blackbox_datas()[:2])
    x = torch.randn(2, 6, 1, 40, 80, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 8, (2, 6), generator=torch.Generator().manual_seed(1))
    results = {}
    for dtype in (None, torch.bfloat16):
        params, buffers = stack_module_state(models)
        params = {k: v.detach().clone() for k, v in _matmul_layout(params).items()}
        kernel = BlackBoxKernel(build_model("blackbox", 8).eval(), dtype)
        logits = kernel.forward(params, buffers, x)
        before = params["hidden.weight"].clone()
        kernel.template.train()
        kernel.train_step(params, buffers, x, y, torch.ones(2, 6), torch.full((2,), 0.05),
                          [torch.Generator().manual_seed(k) for k in range(2)])
        results[dtype] = logits, params["hidden.weight"] - before
    (full, d_full), (half, d_half) = results[None], results[torch.bfloat16]
    assert half.dtype == torch.float32 and not torch.equal(half, full)
    torch.testing.assert_close(half, full, atol=0.05, rtol=0.02)
    assert float((d_half - d_full).norm() / d_full.norm()) < 0.05
