"""Checkpoints: round trip, metadata, and a clear CheckpointError for every broken file."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import tfcnn
from tfcnn.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from tfcnn.config import CLASSES, FRONT_END, PRESETS, FrontEnd
from tfcnn.errors import CheckpointError
from tfcnn.models import ARCHITECTURES, build_model, init_timefreq_from


def _save(path, model, **kw):
    args = dict(classes=CLASSES, norm_mean=-1.25, norm_std=0.75, front_end=FRONT_END,
                train_config=PRESETS["quick"], metrics={"accuracy": 87.5},
                extra={"fold": 3, "trained_on": "synthetic"})
    args.update(kw)
    return save_checkpoint(path, model, **args)


def _x(batch: int = 5) -> torch.Tensor:
    return torch.randn(batch, 1, 40, 80, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_round_trip_gives_identical_predictions_and_metadata(tmp_path, arch):
    torch.manual_seed(1)
    model = build_model(arch).eval()
    path = _save(tmp_path / "sub" / f"{arch}.safetensors", model)
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind
    ckpt = load_checkpoint(path)
    assert not ckpt.model.training
    assert ckpt.arch == arch == ckpt.model.arch
    assert ckpt.arch_params == model.arch_params
    assert ckpt.classes == CLASSES
    assert (ckpt.norm_mean, ckpt.norm_std) == (-1.25, 0.75)
    assert ckpt.front_end == FRONT_END and isinstance(ckpt.front_end, FrontEnd)
    assert ckpt.train_config == PRESETS["quick"].to_dict()
    assert ckpt.metrics == {"accuracy": 87.5}
    assert ckpt.extra == {"fold": 3, "trained_on": "synthetic"}
    assert ckpt.meta["format_version"] == FORMAT_VERSION
    assert ckpt.meta["code_version"] == tfcnn.__version__
    assert ckpt.path == path
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model(_x()), model(_x()), rtol=0, atol=0)


def test_non_default_parameters_and_classes_survive(tmp_path):
    model = build_model("time", n_classes=3, time_filter=(1, 120), patch_frames=160).eval()
    fe = FrontEnd(patch_frames=160)
    path = _save(tmp_path / "t.safetensors", model, classes=("a", "b", "c"), front_end=fe)
    ckpt = load_checkpoint(path)
    assert ckpt.arch_params["time_filter"] == [1, 120]
    assert ckpt.front_end.patch_frames == 160
    assert ckpt.classes == ("a", "b", "c")
    x = torch.randn(2, 1, 40, 160)
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model(x), model(x), rtol=0, atol=0)


def test_timefreq_init_checkpoint_keeps_its_arch_and_branches(tmp_path):
    tf = init_timefreq_from(build_model("timefreq-init"), build_model("time"),
                            build_model("frequency"))
    ckpt = load_checkpoint(_save(tmp_path / "tfi.safetensors", tf))
    assert ckpt.arch == "timefreq-init"
    for name, value in tf.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[name], value)


def test_load_from_bytes(tmp_path):
    model = build_model("frequency").eval()
    path = _save(tmp_path / "f.safetensors", model)
    ckpt = load_checkpoint(path.read_bytes())
    assert ckpt.path is None and ckpt.arch == "frequency"
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model(_x()), model(_x()), rtol=0, atol=0)


def test_overwrite_is_atomic_replace(tmp_path):
    path = tmp_path / "m.safetensors"
    _save(path, build_model("time"), metrics={"accuracy": 1.0})
    _save(path, build_model("time"), metrics={"accuracy": 2.0})
    assert load_checkpoint(path).metrics == {"accuracy": 2.0}
    assert len(list(tmp_path.iterdir())) == 1


# ---- broken files ---------------------------------------------------------------------------
def _meta(**changes) -> dict:
    meta = {"format": "tfcnn-checkpoint", "format_version": 1, "arch": "time",
            "arch_params": build_model("time").arch_params, "classes": list(CLASSES),
            "norm_mean": 0.0, "norm_std": 1.0, "front_end": FRONT_END.to_dict(),
            "train_config": {}, "metrics": {}, "code_version": "0.1.0", "extra": {}}
    meta.update(changes)
    return meta


def _raw(path, model, meta) -> None:
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata=None if meta is None else {"tfcnn": json.dumps(meta)})


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.safetensors: no such checkpoint file"):
        load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("content,message", [
    (b"", r"not a safetensors checkpoint \(only 0 bytes\)"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64), "truncated or not a safetensors checkpoint"),
    (b"\x05\x00\x00\x00\x00\x00\x00\x00{oops", "corrupt header"),
])
def test_not_a_safetensors_file(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_pickle_file_is_refused_not_unpickled(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(build_model("time").state_dict(), path)
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint|corrupt header"):
        load_checkpoint(path)


def test_truncated_file(tmp_path):
    path = _save(tmp_path / "m.safetensors", build_model("timefreq"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt tensor data"):
        load_checkpoint(path)
    path.write_bytes(data[:100])
    with pytest.raises(CheckpointError, match="truncated or not a safetensors checkpoint"):
        load_checkpoint(path)


def test_safetensors_without_tfcnn_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    _raw(path, build_model("time"), None)
    with pytest.raises(CheckpointError, match="without tfcnn metadata; not a tfcnn checkpoint"):
        load_checkpoint(path)


def test_corrupt_metadata_json(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"tfcnn": "{not json"})
    with pytest.raises(CheckpointError, match=r"corrupt tfcnn metadata \(invalid JSON\)"):
        load_checkpoint(path)


def test_newer_format_version(tmp_path):
    path = tmp_path / "m.safetensors"
    _raw(path, build_model("time"), _meta(format_version=FORMAT_VERSION + 1, code_version="9.0"))
    with pytest.raises(CheckpointError,
                       match=r"newer tfcnn \(checkpoint format 2, this code reads up to 1"):
        load_checkpoint(path)


def test_unknown_architecture(tmp_path):
    path = tmp_path / "m.safetensors"
    _raw(path, build_model("time"), _meta(arch="transformer"))
    with pytest.raises(CheckpointError, match="unknown architecture 'transformer'.*blackbox"):
        load_checkpoint(path)


def test_weights_of_another_architecture(tmp_path):
    path = tmp_path / "m.safetensors"
    _raw(path, build_model("time"),
         _meta(arch="timefreq", arch_params=build_model("timefreq").arch_params))
    with pytest.raises(CheckpointError, match=r"weights do not match architecture "
                                              r"'timefreq'.*missing \['freq_branch"):
        load_checkpoint(path)


def test_weights_of_another_shape(tmp_path):
    path = tmp_path / "m.safetensors"
    _raw(path, build_model("time", time_filter=(1, 30)), _meta())
    with pytest.raises(CheckpointError, match=r"time_branch.conv.weight has shape "
                                              r"\(32, 1, 1, 30\), expected \(32, 1, 1, 60\)"):
        load_checkpoint(path)


def test_incompatible_metadata_values(tmp_path):
    path = tmp_path / "m.safetensors"
    _raw(path, build_model("time"), _meta(arch_params={"time_filter": [1, 60], "hidden": 5}))
    with pytest.raises(CheckpointError, match="incompatible metadata: unknown parameter"):
        load_checkpoint(path)
    _raw(path, build_model("time"), _meta(norm_std=0.0))
    with pytest.raises(CheckpointError, match="norm_std must be a finite number > 0"):
        load_checkpoint(path)
    _raw(path, build_model("time"), _meta(front_end={"sample_rate": 44100, "bogus": 1}))
    with pytest.raises(CheckpointError, match="incompatible metadata"):
        load_checkpoint(path)
    meta = _meta()
    del meta["classes"]
    _raw(path, build_model("time"), meta)
    with pytest.raises(CheckpointError, match="metadata lacks classes"):
        load_checkpoint(path)


def _params(arch: str, **changes) -> dict:
    return {**build_model(arch).arch_params, **changes}


@pytest.mark.parametrize("meta, message", [
    (_meta(arch="blackbox", arch_params=_params("blackbox", n_filters=10**8)),
     r"n_filters must be <= 1024, got 100000000"),
    (_meta(arch="timefreq", arch_params=_params("timefreq", hidden=10**7)),
     r"hidden must be <= 4096"),
    (_meta(arch_params=_params("time", time_filter=[1, 10**6])), r"does not fit its input"),
    (_meta(arch_params=_params("time", n_mels=10**6)), r"n_mels must be <= 256"),
    (_meta(arch_params=_params("time", patch_frames=10**7)), r"patch_frames must be <= 1024"),
    (_meta(classes=[f"c{i}" for i in range(5000)]), r"n_classes must be <= 1000"),
    (_meta(front_end={**FRONT_END.to_dict(), "hop_length": 1}), r"hop_length must be >= 64"),
    (_meta(front_end={**FRONT_END.to_dict(), "n_fft": 2**24}), r"n_fft must be <= 16384"),
    (_meta(front_end={**FRONT_END.to_dict(), "sample_rate": 10**9,
                      "f_max_hz": 22050.0}), r"sample_rate must be <= 192000"),
    (_meta(front_end={**FRONT_END.to_dict(), "n_mels": 10**6}), r"n_mels must be <= 256"),
])
def test_oversized_header_is_refused_before_anything_is_built(tmp_path, meta, message):
    """A header asking for huge layers or a tiny hop is refused in milliseconds, not after
    allocating it (n_filters = 10**8 would be about 24 GB of weights)."""
    import time

    path = tmp_path / "m.safetensors"
    _raw(path, build_model("time"), meta)
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)
    assert time.perf_counter() - start < 0.5


#: The safety probes these tests answer (tests/conftest.py marks them ``safety``;
#: ``scripts/safety_report.py`` writes docs/safety-probes.md from their results).
SAFETY_PROBES = {
    "test_oversized_header_is_refused_before_anything_is_built"
    "[meta0-n_filters must be <= 1024, got 100000000]": {
        "probe": "checkpoint header n_filters = 10^8",
        "before": "24 GB allocated before any check", "must": "refused before anything is built"},
    "test_oversized_header_is_refused_before_anything_is_built"
    "[meta6-hop_length must be >= 64]": {
        "probe": "checkpoint header hop_length = 1", "before": "6 s prediction took 82 s",
        "must": "refused before anything is built"},
}
