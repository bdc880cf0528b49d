"""The four architectures: Table 1's parameter counts, shapes, init, pooling semantics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.func import functional_call, stack_module_state

from tfcnn.config import PAPER_TABLE1
from tfcnn.errors import ConfigError
from tfcnn.models import (
    ARCHITECTURES,
    arch_param_names,
    build_model,
    conv_filters,
    count_parameters,
    frequency_filters,
    init_timefreq_from,
    temporal_filters,
)


def _input(batch: int = 3, n_mels: int = 40, frames: int = 80, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1, n_mels, frames, generator=g)  # (batch, 1, n_mels, frames)


@pytest.mark.parametrize("arch,expected", [
    ("blackbox", 3_275_312), ("timefreq", 196_816), ("time", 7_336), ("frequency", 3_368),
    ("timefreq-init", 196_816),
])
def test_parameter_counts_match_table1(arch, expected):
    assert count_parameters(build_model(arch)) == expected
    base = arch.replace("-init", "")
    assert PAPER_TABLE1[base].params == expected


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("n_classes", [8, 5])
def test_output_is_logits_of_batch_by_classes(arch, n_classes):
    model = build_model(arch, n_classes=n_classes).eval()
    out = model(_input())
    assert out.shape == (3, n_classes)
    assert model.arch == arch and model.n_classes == n_classes
    # logits, not probabilities
    assert not torch.allclose(out.exp().sum(1), torch.ones(3))


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_glorot_uniform_weights_and_zero_biases(arch):
    torch.manual_seed(0)
    model = build_model(arch)
    for layer in model.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            w = layer.weight.detach()
            fan_in = w[0].numel()
            fan_out = w.shape[0] * (w[0, 0].numel() if w.ndim == 4 else 1)
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            assert float(w.abs().max()) <= bound + 1e-7
            # a uniform draw fills its interval (PyTorch's default init has a different bound)
            assert float(w.abs().max()) > 0.9 * bound
            assert torch.count_nonzero(layer.bias) == 0


def test_arch_params_resolved_and_json_round_trip():
    for arch in ARCHITECTURES:
        model = build_model(arch)
        params = json.loads(json.dumps(model.arch_params))
        assert params == model.arch_params
        again = build_model(arch, **params)
        assert again.arch_params == model.arch_params
        assert count_parameters(again) == count_parameters(model)
        assert set(params) == set(arch_param_names(arch))
    assert build_model("time").arch_params["time_filter"] == [1, 60]
    assert build_model("frequency").arch_params["freq_filter"] == [32, 1]
    assert build_model("blackbox").arch_params["conv_filter"] == [12, 8]
    assert build_model("blackbox").arch_params["pool"] == [4, 1]


def test_unknown_architecture_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown architecture 'resnet'.*"
                                          r"blackbox, timefreq, time, frequency"):
        build_model("resnet")


def test_unknown_or_bad_parameters_raise_config_error():
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) hidden for "
                                          r"architecture 'time'.*time_filter"):
        build_model("time", hidden=100)
    with pytest.raises(ConfigError, match=r"time_filter \(1, 90\) does not fit.*40 x 80"):
        build_model("time", time_filter=(1, 90))
    with pytest.raises(ConfigError, match="time_filter must be two positive integers"):
        build_model("timefreq", time_filter=(1, 0))
    with pytest.raises(ConfigError, match=r"dropout must be in \[0, 1\), got 1.5"):
        build_model("blackbox", dropout=1.5)
    with pytest.raises(ConfigError, match="n_filters must be a positive integer"):
        build_model("frequency", n_filters=0)


def test_longer_temporal_filters_build_and_run():
    # 1×120 needs patches of at least 120 frames; 1×70 fits the paper's 80.
    model = build_model("time", time_filter=(1, 120), patch_frames=160).eval()
    assert model(_input(frames=160)).shape == (3, 8)
    assert temporal_filters(model).shape == (32, 120)
    model = build_model("timefreq", time_filter=(1, 70))
    assert model(_input()).shape == (3, 8)
    # conv 32·70+32, pool (40,1) → 32 × 11 frames, dense 352·200+200, freq 1056, out 1608
    assert count_parameters(model) == 32 * 70 + 32 + (352 + 288) * 200 + 200 + 1056 + 1608


def test_time_model_pools_over_all_bands():
    """1×n filters work band-wise and the (40,1) pool takes the max over every band: the
    Time model cannot tell which band a pattern sits in (paper §1), so permuting the bands
    leaves its output unchanged."""
    model = build_model("time").eval()
    x = _input()
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(x), model(x[:, :, perm, :]))
    # ... but it does see time order
    assert not torch.allclose(model(x), model(x.flip(-1)), atol=1e-4)


def test_frequency_model_pools_over_all_frames():
    """m×1 filters work frame-wise and the (1,80) pool spans every frame: the Frequency
    model is blind to time order (paper §1)."""
    model = build_model("frequency").eval()
    x = _input()
    perm = torch.randperm(80, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(model(x), model(x[:, :, :, perm]))
    assert not torch.allclose(model(x), model(x.flip(-2)), atol=1e-4)


def test_dropout_only_in_training_mode():
    model = build_model("timefreq")
    x = _input()
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    assert not torch.allclose(a, model(x))


def test_filter_accessors():
    tf = build_model("timefreq")
    np.testing.assert_array_equal(temporal_filters(tf),
                                  tf.time_branch.conv.weight.detach().numpy()[:, 0, 0, :])
    assert temporal_filters(tf).shape == (32, 60)
    assert frequency_filters(tf).shape == (32, 32)
    np.testing.assert_array_equal(frequency_filters(tf),
                                  tf.freq_branch.conv.weight.detach().numpy()[:, 0, :, 0])
    assert temporal_filters(build_model("time")).shape == (32, 60)
    assert temporal_filters(build_model("frequency")) is None
    assert frequency_filters(build_model("time")) is None
    bb = build_model("blackbox")
    assert temporal_filters(bb) is None and frequency_filters(bb) is None
    assert conv_filters(bb).shape == (32, 12, 8)
    assert conv_filters(tf) is None


def test_timefreq_init_copies_exactly_the_branch_weights():
    torch.manual_seed(0)
    time_model, freq_model = build_model("time"), build_model("frequency")
    tf = build_model("timefreq-init")
    assert tf.arch == "timefreq-init"
    before = {k: v.clone() for k, v in tf.state_dict().items()}
    assert init_timefreq_from(tf, time_model, freq_model) is tf
    after = tf.state_dict()
    copied = {"time_branch.conv.weight": time_model.time_branch.conv.weight,
              "time_branch.conv.bias": time_model.time_branch.conv.bias,
              "freq_branch.conv.weight": freq_model.freq_branch.conv.weight,
              "freq_branch.conv.bias": freq_model.freq_branch.conv.bias}
    for name, value in after.items():
        if name in copied:
            torch.testing.assert_close(value, copied[name].detach(), rtol=0, atol=0)
            # a copy, not shared storage: training tf must not change the source models
            assert value.data_ptr() != copied[name].data_ptr()
        else:
            torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    # different weights than before for the copied ones
    assert not torch.equal(before["time_branch.conv.weight"], after["time_branch.conv.weight"])


def test_timefreq_init_rejects_wrong_models_and_shapes():
    tf = build_model("timefreq")
    with pytest.raises(ConfigError, match="needs a time model, got 'frequency'"):
        init_timefreq_from(tf, build_model("frequency"), build_model("frequency"))
    with pytest.raises(ConfigError, match="time branch filters differ"):
        init_timefreq_from(tf, build_model("time", time_filter=(1, 30)), build_model("frequency"))


def test_stacked_fold_models_run_with_functional_call_and_vmap():
    """Several fold models stacked with torch.func give the same logits as one by one."""
    torch.manual_seed(0)
    models = [build_model("timefreq").eval() for _ in range(3)]
    params, buffers = stack_module_state(models)
    base = build_model("timefreq").eval()
    x = _input(batch=4)

    def call(p, b, inp):
        return functional_call(base, (p, b), (inp,))

    stacked = torch.vmap(call, in_dims=(0, 0, None))(params, buffers, x)  # (3, 4, 8)
    for k, model in enumerate(models):
        torch.testing.assert_close(stacked[k], model(x), rtol=1e-5, atol=1e-6)


# --- dropout and layer order, against the original code -------------------------------------

#: Layer sequences of jordipons/CBMI2016 ``buildArchitecture.py`` (Lasagne), transcribed:
#: ``lasagne.layers.dropout`` wraps the *input* of both dense layers in Black-box and in
#: (load)mergeTimeFrequency, and the input of the output layer in time/frequency.
ORIGINAL_LAYERS: dict[str, list[str]] = {
    "blackbox": ["conv(12x8)", "relu", "maxpool", "dropout", "dense(200)", "relu", "dropout",
                 "dense(8)"],
    "time": ["conv(1x60)", "relu", "maxpool", "dropout", "dense(8)"],
    "frequency": ["conv(32x1)", "relu", "maxpool", "dropout", "dense(8)"],
    "timefreq": ["conv(1x60)", "relu", "maxpool", "conv(32x1)", "relu", "maxpool", "dropout",
                 "dense(200)", "relu", "dropout", "dense(8)"],
}
ORIGINAL_LAYERS["timefreq-init"] = ORIGINAL_LAYERS["timefreq"]


def _layer_sequence(model: torch.nn.Module) -> list[str]:
    """The model's forward as layer tokens, read from its torch.fx graph (reshapes skipped)."""
    from torch import fx

    graph = fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    tokens = []
    for node in graph.nodes:
        target = modules.get(node.target) if node.op == "call_module" else node.target
        if isinstance(target, torch.nn.Conv2d):
            tokens.append("conv({}x{})".format(*target.kernel_size))
        elif isinstance(target, torch.nn.Linear):
            tokens.append(f"dense({target.out_features})")
        elif isinstance(target, torch.nn.Dropout):
            assert target.p == 0.5
            tokens.append("dropout")
        elif getattr(target, "__name__", "") in ("relu", "max_pool2d"):
            tokens.append("relu" if target.__name__ == "relu" else "maxpool")
    return tokens


@pytest.mark.parametrize("arch", list(ORIGINAL_LAYERS))
def test_layer_sequence_equals_the_original(arch):
    assert _layer_sequence(build_model(arch)) == ORIGINAL_LAYERS[arch]


def _positive_features(model: torch.nn.Module) -> torch.nn.Module:
    """Non-negative weights, positive biases: every ReLU output is > 0, so a zero is a dropout."""
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
                layer.weight.abs_()
                layer.bias.fill_(1.0)
    return model


@pytest.mark.parametrize("arch", ["blackbox", "timefreq", "timefreq-init"])
def test_dropout_zeroes_about_half_of_each_dense_layers_inputs_in_training_only(arch):
    model = _positive_features(build_model(arch))
    seen: dict[str, torch.Tensor] = {}
    for name in ("hidden", "output"):
        getattr(model, name).register_forward_pre_hook(
            lambda _m, args, name=name: seen.__setitem__(name, args[0].detach()))
    x = _input(batch=4).abs()
    torch.manual_seed(0)
    model.train()
    model(x)
    for name in ("hidden", "output"):
        zeroed = (seen[name] == 0).float().mean().item()
        assert zeroed == pytest.approx(0.5, abs=0.05), f"{arch}.{name} input: {zeroed:.3f} zeroed"
    model.eval()
    model(x)
    for name in ("hidden", "output"):
        assert (seen[name] == 0).sum().item() == 0, f"{arch}.{name}: dropout in eval mode"
