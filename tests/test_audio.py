"""Audio input: real files of every supported format, written by the test, and every error."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from tfcnn.audio import load_audio, require_patch, resample, write_wav
from tfcnn.config import FRONT_END
from tfcnn.errors import AudioError

SR = 44100


def _sine(freq_hz: float, *, seconds: float = 1.0, sample_rate: int = SR,
          amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _peak_hz(y: np.ndarray, sample_rate: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum) * sample_rate / len(y))


def _encode(y: np.ndarray, sample_rate: int, fmt: str, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sample_rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def test_this_soundfile_build_has_every_codec():
    formats = sf.available_formats()
    assert {"WAV", "FLAC", "OGG", "MP3"} <= set(formats)
    assert {"VORBIS", "OPUS"} <= set(sf.available_subtypes("OGG"))
    assert "MPEG_LAYER_III" in sf.available_subtypes("MP3")


# Opus only exists at 48 kHz and below; the decoder output is resampled to 44.1 kHz.
@pytest.mark.parametrize(
    "fmt, subtype, file_rate, suffix",
    [
        ("WAV", "PCM_16", 44100, ".mp3"),   # a ".mp3" that really holds a WAV
        ("FLAC", "PCM_24", 44100, ".wav"),
        ("OGG", "VORBIS", 44100, ".flac"),
        ("OGG", "OPUS", 48000, ".opus"),
        ("MP3", "MPEG_LAYER_III", 44100, ".wav"),  # and a ".wav" that holds an MP3
    ],
)
def test_formats_decode_by_content_not_extension(tmp_path, fmt, subtype, file_rate, suffix):
    tone = _sine(1000.0, seconds=2.0, sample_rate=file_rate)
    path = tmp_path / f"clip{suffix}"
    path.write_bytes(_encode(tone, file_rate, fmt, subtype))
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 2 * SR) < 0.02 * SR  # lossy codecs may pad a few ms
    assert abs(_peak_hz(y) - 1000.0) < 2.0
    assert 0.3 < np.sqrt(np.mean(y[SR // 2: SR] ** 2)) / (0.5 / np.sqrt(2)) < 1.3


def test_bytes_and_file_objects_load_like_paths(tmp_path):
    data = _encode(_sine(440.0), SR, "FLAC", "PCM_16")
    path = tmp_path / "a.flac"
    path.write_bytes(data)
    from_path = load_audio(path)
    np.testing.assert_array_equal(load_audio(data), from_path)
    np.testing.assert_array_equal(load_audio(io.BytesIO(data), name="upload.flac"), from_path)
    with open(path, "rb") as handle:
        np.testing.assert_array_equal(load_audio(handle), from_path)


def test_channels_are_mixed_down_by_mean(tmp_path):
    left, right = _sine(300.0), _sine(700.0, amplitude=0.25)
    stereo = np.stack([left, right], axis=1)  # (n, 2)
    sf.write(tmp_path / "stereo.wav", stereo, SR, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "stereo.wav"), (left + right) / 2, atol=1e-7)
    six = np.stack([_sine(100.0 * (c + 1), amplitude=0.1) for c in range(6)], axis=1)
    sf.write(tmp_path / "six.wav", six, SR, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "six.wav"), six.mean(axis=1), atol=1e-7)


@pytest.mark.parametrize("file_rate", [8000, 22050, 48000, 96000])
def test_any_rate_is_resampled_to_44100(tmp_path, file_rate):
    sf.write(tmp_path / "r.wav", _sine(1000.0, seconds=1.5, sample_rate=file_rate), file_rate,
             subtype="FLOAT")
    y = load_audio(tmp_path / "r.wav")
    assert len(y) == round(1.5 * SR)
    assert abs(_peak_hz(y) - 1000.0) < 1.0
    # soxr HQ keeps the tone's level (no droop at 1 kHz).
    rms = np.sqrt(np.mean(y[SR // 4: -SR // 4] ** 2))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)
    assert len(load_audio(tmp_path / "r.wav", sample_rate=16000)) == 24000


def test_resample_is_identity_at_same_rate():
    y = _sine(200.0)
    np.testing.assert_array_equal(resample(y, orig_rate_hz=SR, target_rate_hz=SR), y)
    with pytest.raises(AudioError, match="positive integer.*got 0"):
        resample(y, orig_rate_hz=0, target_rate_hz=SR)


# --- errors ------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: no such file"):
        load_audio(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)


def test_empty_file_and_empty_bytes(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav: file is empty"):
        load_audio(tmp_path / "empty.wav")
    with pytest.raises(AudioError, match=r"upload\.mp3: file is empty"):
        load_audio(b"", name="upload.mp3")


@pytest.mark.parametrize(
    "content",
    [
        b"this is a text file, not audio\n" * 20,
        bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)),
        _encode(_sine(440.0), SR, "WAV", "PCM_16")[:30],  # truncated header
    ],
    ids=["text", "random", "truncated"],
)
def test_undecodable_bytes(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=r"bad\.wav: cannot decode audio"):
        load_audio(path)
    with pytest.raises(AudioError, match=r"song\.ogg: cannot decode audio"):
        load_audio(io.BytesIO(content), name="song.ogg")


def test_zero_length_audio(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), SR)
    assert (tmp_path / "zero.wav").stat().st_size > 0  # a valid header, no samples
    with pytest.raises(AudioError, match=r"zero\.wav: audio has zero length"):
        load_audio(tmp_path / "zero.wav")


def test_non_finite_samples(tmp_path):
    y = _sine(440.0)
    y[1000] = np.nan
    sf.write(tmp_path / "nan.wav", y, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: audio contains non-finite samples"):
        load_audio(tmp_path / "nan.wav")
    y[1000] = np.inf
    sf.write(tmp_path / "inf.wav", y, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"inf\.wav: audio contains non-finite"):
        load_audio(tmp_path / "inf.wav")


def test_bad_source_types_and_rate():
    with pytest.raises(AudioError, match="binary mode"):
        load_audio(io.StringIO("RIFF"), name="text-mode")
    with pytest.raises(AudioError, match="cannot read audio from a int"):
        load_audio(42)
    with pytest.raises(AudioError, match=r"x\.wav: sample_rate must be a positive integer.*-1"):
        load_audio(b"RIFF", sample_rate=-1, name="x.wav")


# --- one patch ---------------------------------------------------------------------------

def test_require_patch_names_the_needed_duration():
    need = FRONT_END.min_patch_samples  # 78 * 1024 + 1: T = 1 + ceil(n / 1024) = 80
    assert need == 79_873  # the shortest clip with 80 frames under Essentia's framing
    require_patch(np.zeros(need, np.float32))
    with pytest.raises(AudioError, match=r"short\.wav: .*0\.50 s.*at least 1\.81 s \(one patch of 80 frames\)"):
        require_patch(np.zeros(SR // 2, np.float32), name="short.wav")
    with pytest.raises(AudioError, match=r"79 frames.*1\.81 s"):
        require_patch(np.zeros(need - 1, np.float32))


# --- writing -----------------------------------------------------------------------------

def test_write_wav_is_16_bit_pcm_and_round_trips(tmp_path):
    y = _sine(440.0, seconds=0.5)
    y[10] = 1.7  # clipped, not wrapped
    out = write_wav(tmp_path / "sub" / "out.wav", y, sample_rate=SR)
    assert out == tmp_path / "sub" / "out.wav"
    info = sf.info(out)
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", SR, 1)
    back = load_audio(out)
    assert back[10] == pytest.approx(1.0, abs=1e-4)
    back[10] = y[10] = 0.0
    np.testing.assert_allclose(back, y, atol=1.0 / 32767)
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.wav"]  # no temp file left


def test_write_wav_replaces_atomically_and_rejects_bad_input(tmp_path):
    path = tmp_path / "x.wav"
    write_wav(path, _sine(100.0), sample_rate=SR)
    write_wav(path, _sine(200.0, seconds=0.25), sample_rate=SR)
    assert sf.info(path).frames == SR // 4
    bad = _sine(100.0)
    bad[3] = np.nan
    with pytest.raises(AudioError, match=r"x\.wav: refusing to write non-finite"):
        write_wav(path, bad, sample_rate=SR)
    with pytest.raises(AudioError, match=r"expected samples of shape.*got \(0,\)"):
        write_wav(path, np.zeros(0), sample_rate=SR)
    with pytest.raises(AudioError, match="sample_rate must be a positive integer"):
        write_wav(path, _sine(100.0), sample_rate=44100.5)
    assert sf.info(path).frames == SR // 4  # the failed writes left the old file intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.wav"]


def test_corrupt_mp3_leaves_no_decoder_chatter_on_stderr(tmp_path, capfd):
    """mpg123 prints "Note: ... resync" on fd 2 for junk; the user should see one error line."""
    bad = tmp_path / "x.mp3"
    bad.write_bytes(b"hello\n")
    with pytest.raises(AudioError, match=r"x\.mp3: cannot decode audio"):
        load_audio(bad)
    assert capfd.readouterr().err == ""


# ----------------------------------------------------------------------------- long and odd files


def test_blockwise_log_mel_equals_one_shot_on_a_real_file(tmp_path):
    """Decode → resample → log-mel block by block gives the one-shot log-mel: same frame
    count, values equal to float32 rounding, whatever the block size."""
    import soxr

    from tfcnn.audio import iter_audio
    from tfcnn.features import log_mel, log_mel_stream

    rng = np.random.default_rng(3)
    y = (0.2 * rng.standard_normal(22050 * 7 + 123)).astype(np.float32)
    path = tmp_path / "song.flac"
    sf.write(path, np.stack([y, -0.5 * y], axis=1), 22050, subtype="PCM_16")
    raw, rate = sf.read(path, dtype="float32", always_2d=True)  # independent reference
    reference = log_mel(soxr.resample(raw.mean(axis=1), rate, SR, quality="HQ"), SR)
    for block_frames in (4093, 65536, 1 << 20):
        spec = log_mel_stream(iter_audio(path, block_frames=block_frames))
        assert spec.shape == reference.shape == (40, FRONT_END.n_frames(2 * y.size))
        np.testing.assert_allclose(spec, reference, rtol=0, atol=2e-6)


def test_over_long_audio_is_refused_from_its_header_before_decoding(tmp_path):
    """A real FLAC of 10 min 20 s (quiet, so only a few hundred kB) is refused for a 10 min
    limit by its header alone: faster than decoding even its first block."""
    import time

    path = tmp_path / "long.flac"
    with sf.SoundFile(path, "w", 8000, 1, subtype="PCM_16") as f:
        for _ in range(620):
            f.write(_sine(220.0, seconds=1.0, sample_rate=8000, amplitude=0.01))
    data = path.read_bytes()
    assert len(data) < 20 * 2**20
    start = time.perf_counter()
    with pytest.raises(AudioError, match=r"long.flac: audio is 10.3 min long; the limit is "
                                         r"10 min"):
        load_audio(data, name="long.flac", max_duration_s=600.0)
    assert time.perf_counter() - start < 0.2
    assert load_audio(path).size == 620 * SR  # without a limit it loads


def test_truncated_wav_is_used_with_one_warning(tmp_path):
    from tfcnn.errors import AudioWarning

    full = tmp_path / "full.wav"
    sf.write(full, _sine(330.0, seconds=3.0), SR, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 2 * SR])  # header + 1 s of the 3 s
    with pytest.warns(AudioWarning, match=r"cut.wav: truncated WAV file: it holds 88200 of "
                                          r"the 264600 data bytes"):
        y = load_audio(cut)
    assert y.size == SR
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_audio(full)  # an intact file warns nothing


def test_symlink_loop_device_and_fifo_are_named(tmp_path):
    import os

    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    with pytest.raises(AudioError, match="a.wav: symbolic link loop"):
        load_audio(tmp_path / "a.wav")
    with pytest.raises(AudioError, match="not a regular file"):
        load_audio("/dev/zero")
    os.mkfifo(tmp_path / "pipe.wav")
    with pytest.raises(AudioError, match="pipe.wav: not a regular file"):
        load_audio(tmp_path / "pipe.wav")  # refused at once: a FIFO would block the decoder


def test_file_names_need_not_be_utf8(tmp_path):
    import os

    name = os.fsdecode(b"caf\xe9.wav")
    sf.write(tmp_path / "ok.wav", _sine(440.0), SR, subtype="PCM_16")
    os.rename(tmp_path / "ok.wav", tmp_path / name)
    assert load_audio(tmp_path / name).size == SR
    (tmp_path / name).write_bytes(b"junk" * 20)
    with pytest.raises(AudioError, match=r"caf\\xe9.wav: cannot decode"):
        load_audio(tmp_path / name)
