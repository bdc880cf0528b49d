"""One-song library calls compute on REQUEST_THREADS torch threads, whoever calls them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tfcnn import assessment, features, inference
from tfcnn.errors import ConfigError
from tfcnn.interpret import study
from tfcnn.threads import REQUEST_THREADS, per_request, torch_threads


def test_per_request_computes_on_the_request_threads_and_restores_the_count():
    @per_request
    def seen() -> int:
        return torch.get_num_threads()

    with torch_threads(2):
        assert seen() == REQUEST_THREADS
        assert torch.get_num_threads() == 2  # restored for the caller


def test_per_request_restores_the_count_when_the_call_raises():
    @per_request
    def fails() -> None:
        raise ValueError("bad input")

    with torch_threads(2):
        with pytest.raises(ValueError):
            fails()
        assert torch.get_num_threads() == 2


@pytest.mark.parametrize("fn", [features.log_mel, inference.predict, inference.predict_features,
                                assessment.classify, study.tempo_study],
                         ids=lambda f: f.__qualname__)
def test_the_library_one_song_calls_are_per_request(fn):
    """A notebook calling these gets one thread per request (fast on a busy machine)."""
    assert getattr(fn, "__wrapped__", None) is not None and fn.__name__ == fn.__wrapped__.__name__
    assert "per_request" in fn.__code__.co_qualname  # the wrapper is per_request's


def test_log_mel_runs_under_the_request_threads_and_gives_the_same_values():
    y = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32)
    with torch_threads(2):
        wrapped = features.log_mel(y, 16000)
        with torch_threads(1):
            plain = features.log_mel.__wrapped__(y, 16000)
        assert torch.get_num_threads() == 2
    np.testing.assert_allclose(wrapped, plain, rtol=1e-6, atol=1e-6)


def test_torch_threads_refuses_a_bad_count():
    with pytest.raises(ConfigError, match="thread count must be an integer >= 1, got 0"):
        with torch_threads(0):
            pass
