"""Where training and inference run: the torch device by name, and mixed precision on it."""

from __future__ import annotations

import contextlib

import torch

from tfcnn.config import TrainConfig
from tfcnn.errors import ConfigError


def select_device(name: str = "auto") -> torch.device:
    """The torch device called ``name``; ``auto`` picks CUDA, then MPS, then CPU.

    Raises :class:`ConfigError` for an unknown name or a device this machine lacks.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"device must be a name like 'auto', 'cpu', 'cuda', got {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available here")
    if device.type == "cuda" and device.index is not None:
        if device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"device {name!r} requested but MPS is not available here")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def autocast(device: torch.device, config: TrainConfig):
    """bfloat16 autocast on CUDA when ``config.amp`` (needs no loss scaling); else a no-op."""
    enabled = bool(config.amp) and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def no_autocast(device: torch.device):
    """Autocast off on ``device`` (a no-op context where autocast does not exist)."""
    if device.type in ("cuda", "cpu", "mps", "xpu"):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()
