"""Where a result came from: the code version and the machine, as runs and tables record them."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import torch

from tfcnn import __version__


def code_version() -> str:
    """``tfcnn <version>`` plus the git commit of the source tree when there is one."""
    version = f"tfcnn {__version__}"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            version += f" ({out.stdout.strip()})"
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def machine_info(device: torch.device | None = None) -> dict:
    """Where a run trained: host, CPU count, torch version, device (and GPU name)."""
    info = {
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if device is not None:
        info["device"] = str(device)
        if device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(device)
    return info
