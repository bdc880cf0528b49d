"""A run's request (tfcnn.request): checked once when made, and the same value after every
conversion it makes (argv → argparse, config.json, sweep.json)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tfcnn.__main__ import build_parser
from tfcnn.errors import ConfigError
from tfcnn.request import (
    ARCH_PARAMS,
    RunRequest,
    SweepRequest,
    options,
    parse_filter_shape,
)

#: A request with every field off its default.
FULL = dict(arch="timefreq", n_folds=4, preset="paper", protocol="paper", device="cpu",
            seed=3, epochs=7, lr=0.005, batch_size=16, amp=True, patch_frames=160,
            frames_per_beat=10, time_filter=(1, 30), freq_filter=(20, 1), n_filters=8,
            only_folds=(0, 2), snapshots=(0, 5))


def _parsed(command: str, argv: list[str]):
    return build_parser().parse_args([command, *argv])


def test_every_field_is_an_option_and_survives_argv_and_argparse(tmp_path):
    request = RunRequest(tmp_path, **FULL)
    assert {f.name for f in dataclasses.fields(RunRequest)} == {name for name, *_ in options()}
    assert all(getattr(request, name) != default for name, _, default in options()), \
        "FULL must set every field, or a field could be lost unnoticed"
    assert RunRequest.from_args(_parsed("train", request.argv())) == request
    plain = RunRequest(tmp_path, "time")
    assert RunRequest.from_args(_parsed("train", plain.argv())) == plain


def test_config_json_round_trip(tmp_path):
    request = RunRequest(tmp_path, **FULL)
    config = json.loads(json.dumps({
        **request.to_config(), "arch_params": {**request.arch_params, "dropout": 0.5},
        "snapshots": {"epochs": [0, 5], "folds": [0, 2]}}))
    assert RunRequest.from_config(config) == request
    assert config["train_config"]["max_epochs"] == 7 and config["train_config"]["seed"] == 3


def test_architecture_parameters_are_resolved_so_equal_runs_compare_equal(tmp_path):
    paper = RunRequest(tmp_path, "time")
    assert (paper.time_filter, paper.n_filters, paper.freq_filter) == ((1, 60), 32, None)
    assert RunRequest(tmp_path, "time", time_filter=[1, 60], n_filters=32) == paper
    assert RunRequest(tmp_path, "time", epochs=150, lr=0.01).argv() == paper.argv()
    assert "--epochs" not in paper.argv()  # the preset's own value is not an override
    # another architecture keeps only what it takes
    assert paper.replace(arch="frequency").arch_params == {"patch_frames": 80,
                                                           "freq_filter": (32, 1),
                                                           "n_filters": 32}
    assert set(paper.replace(arch="timefreq").arch_params) == set(ARCH_PARAMS)


@pytest.mark.parametrize("change, needle", [
    (dict(arch="resnet"), "unknown architecture 'resnet'; valid architectures: .*timefreq-init"),
    (dict(preset="slow"), "unknown preset 'slow'; valid presets: paper"),
    (dict(protocol="dirty"), "unknown protocol 'dirty'"),
    (dict(n_folds=1), "n_folds must be an integer >= 2, got 1"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(epochs=0), r"epochs must be in \[1, 2000\]"),
    (dict(epochs=2001), r"epochs must be in \[1, 2000\]"),
    (dict(lr=0.0), "lr must be a finite number > 0"),
    (dict(batch_size=0), "batch_size must be > 0"),
    (dict(only_folds=[3]), r"only_folds must be fold indices in 0\.\.2, got \[3\]"),
    (dict(snapshots=[-1]), "snapshots must be epochs >= 0"),
    (dict(freq_filter=(32, 1)), "architecture 'time' has no freq_filter; it takes "
                                "patch_frames, time_filter, n_filters"),
    (dict(n_filters=0), "n_filters must be a positive integer, got 0"),
    (dict(time_filter=(1, 99)), r"1x99 is 99 frames wide but a patch is 80 frames; the "
                                r"largest that fits is 1x80"),
])
def test_bad_values_are_refused_when_the_request_is_made(tmp_path, change, needle):
    with pytest.raises(ConfigError, match=needle):
        RunRequest(tmp_path, **{"arch": "time", "n_folds": 3, **change})


def test_making_a_request_leaves_the_random_state_alone(tmp_path):
    import torch

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    RunRequest(tmp_path, "blackbox")
    assert torch.equal(torch.rand(3), expected)


def test_parse_filter_shape_reads_bins_by_frames_and_names_bad_text():
    assert parse_filter_shape("1x60") == (1, 60) and parse_filter_shape("32X1") == (32, 1)
    for bad in ("1x", "60", "axb", "0x60", "1x-3"):
        with pytest.raises(ConfigError, match=f"got {bad!r}"):
            parse_filter_shape(bad)


def test_sweep_round_trips_and_makes_its_grid_points(tmp_path):
    base = RunRequest(tmp_path, "timefreq", n_folds=3, epochs=2, amp=True, device="cpu")
    sweep = SweepRequest(base, grid=(("n_filters", (8, 16)), ("time_filter", ((1, 30),))),
                         seeds=(1, 0))
    assert sweep.grid == (("time_filter", ((1, 30),)), ("n_filters", (8, 16)))  # in order
    assert SweepRequest.from_dict(json.loads(json.dumps(sweep.to_dict()))) == sweep
    assert SweepRequest.from_args(_parsed("sweep", sweep.argv())) == sweep
    assert [p.name for p in sweep.points()] == ["t1x30-n8-s1", "t1x30-n8-s0", "t1x30-n16-s1",
                                                "t1x30-n16-s0"]
    run = sweep.request(sweep.points()[2], only_folds=[1])
    assert run == base.replace(seed=1, time_filter=(1, 30), n_filters=16, only_folds=(1,))
    assert len(sweep.tasks()) == 4 * 3


def test_sweep_refuses_a_fixed_parameter_it_would_not_record(tmp_path):
    with pytest.raises(ConfigError, match="sweep a list of one value"):
        SweepRequest(RunRequest(tmp_path, "time", n_filters=8), seeds=(0,))
    with pytest.raises(ConfigError, match="cannot sweep lr"):
        SweepRequest(RunRequest(tmp_path, "time"), grid=(("lr", (0.1,)),))
