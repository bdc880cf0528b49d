"""How many torch threads one request computes on.

A prediction of a 30 s track is a few milliseconds of STFT and a few hundred patches through
a small CNN: too little work to split across cores. Torch's intra-op pool splits it anyway,
and when other processes hold the cores every split waits for a descheduled thread, so a
request got several times slower on a busy machine (``python -m bench predict`` measures
both cases). One thread per request keeps its time close to the idle one.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TypeVar

import torch

from tfcnn.errors import ConfigError

#: Intra-op threads for one prediction request (the CLI's, the app's and a notebook's).
REQUEST_THREADS = 1

_F = TypeVar("_F", bound=Callable)


def training_lanes() -> int:
    """Folds trained side by side where the fold-parallel schedule uses worker threads
    (:func:`tfcnn.parallel.fold_schedule`): one per torch thread (the machine's cores by
    default, or ``--threads N``), each lane computing on one thread."""
    return max(1, torch.get_num_threads())


@contextlib.contextmanager
def torch_threads(n: int = REQUEST_THREADS):
    """Compute on ``n`` torch intra-op threads inside the block, then restore the count.

    The count is process-wide: concurrent requests in one process all use the same value,
    which is what every caller here asks for.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"thread count must be an integer >= 1, got {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def per_request(fn: _F) -> _F:
    """Run ``fn`` on :data:`REQUEST_THREADS` torch threads, restoring the count after.

    For the library's one-song calls (:func:`tfcnn.features.log_mel`,
    :func:`tfcnn.inference.predict`, ...), so a notebook or a test gets the CLI's speed on a
    busy machine without managing threads itself.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch_threads(REQUEST_THREADS):
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
