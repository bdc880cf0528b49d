"""The machinery of the safety probes: rows, outcomes, real subprocesses and their
classification, and the temporary folder of hostile files every probe reads.

Used by :mod:`scripts.probes_cli`, :mod:`scripts.probes_app` and
:mod:`scripts.safety_probes` (the table and its runner).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tfcnn.config import CLASSES

REPO = Path(__file__).resolve().parents[1]
SR = 44100
NON_UTF8 = os.fsdecode(b"caf\xe9-\xff.wav")
CLI_TIMEOUT_S = 180.0
LONG_FLAC_RATE = 8000
LONG_FLAC_HOURS = 3.0


@dataclass(frozen=True)
class Row:
    """One probe of the table.

    ``before`` is what the probe showed before the fixes (as observed and reported);
    ``want`` is what the fixed code must do; ``covered_by`` the test that keeps it so.
    """

    id: str
    area: str
    probe: str
    before: str
    want: str
    covered_by: str


@dataclass
class Outcome:
    """What a probe did now: its class (``now``), the line or numbers behind it, whether it
    is what the row wants (``met``), and where measured its seconds and peak memory."""

    now: str
    detail: str = ""
    met: bool = False
    seconds: float | None = None
    peak_rss_mb: float | None = None
    how: str = ""


@dataclass
class Proc:
    """A finished (or killed) subprocess: exit code (None when killed at the timeout)."""

    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


@dataclass(frozen=True)
class Group:
    """Probes that share a setup: run in this process (``cli``) or in a child (``app``)."""

    name: str
    kind: str
    rows: tuple[Row, ...]
    run: Callable[["Workdir"], dict[str, Outcome]]
    heavy: bool = False
    needs_root: bool = False


# ----------------------------------------------------------------------------- processes


def run_process(cmd: list[str], *, cwd: Path, env: dict | None = None,
                timeout_s: float = CLI_TIMEOUT_S) -> Proc:
    """Run ``cmd`` in its own session; kill its group at ``timeout_s``.

    The peak resident memory comes from the child's rusage (``wait4``), so it is that
    process's own peak (and of any children it waited for), not this script's.
    """
    env = dict(os.environ if env is None else env, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        killed = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - start > timeout_s:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                killed = True
                break
            time.sleep(0.05)
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Proc(None if killed else proc.returncode,
                    out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                    seconds, usage.ru_maxrss / 1024)


def tfcnn_cli(*args: str, cwd: Path, timeout_s: float = CLI_TIMEOUT_S, env=None) -> Proc:
    return run_process([sys.executable, "-m", "tfcnn", *args], cwd=cwd, env=env,
                       timeout_s=timeout_s)


def classify(proc: Proc) -> str:
    """``hang (timeout)``, ``traceback``, ``ok``, ``one-line error`` or ``exit N, K lines``."""
    if proc.returncode is None:
        return "hang (timeout)"
    if "Traceback (most recent call last)" in proc.stderr:
        return "traceback"
    lines = proc.err_lines
    if proc.returncode == 0:
        warnings = [line for line in lines if line.startswith("warning:")]
        return "ok, one warning line" if len(warnings) == 1 else "ok"
    if len(lines) == 1 and lines[0].startswith("error:"):
        return "one-line error"
    return f"exit {proc.returncode}, {len(lines)} stderr lines"


def stderr_line(proc: Proc) -> str:
    """The stderr line that tells what happened: a traceback's last (the exception), else
    the first."""
    if not proc.err_lines:
        return ""
    return proc.err_lines[-1 if classify(proc) == "traceback" else 0]


def cli_outcome(proc: Proc, *, want: str, how: str, needle: str | None = None,
                extra_ok: bool = True, detail: str | None = None) -> Outcome:
    """An Outcome of a CLI run: met when its class is ``want``, the first stderr line holds
    ``needle`` (when given) and ``extra_ok``."""
    now = classify(proc)
    met = now == want and extra_ok and (needle is None or needle in proc.stderr)
    return Outcome(now, detail if detail is not None else stderr_line(proc)[:160], met,
                   round(proc.seconds, 1), round(proc.peak_rss_mb), how)


# ----------------------------------------------------------------------------- the folder


def write_wav(path: Path, seconds: float = 4.0, *, freq: float = 440.0) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    y = 0.15 * np.sin(2 * np.pi * freq * t) * (1 + np.sin(2 * np.pi * 2 * t))
    sf.write(path, y.astype(np.float32), SR, subtype="PCM_16")
    return path


class Workdir:
    """The probes' temporary folder; :meth:`build` writes it, a child reopens it by path.

    ``root/`` is the one allowed root of the app (``TFCNN_ALLOWED_ROOTS``); everything else
    (``outside.wav``, ``outside-dir/``) lies outside it, in the temporary folder.
    """

    def __init__(self, path: Path, *, runs: Path | None = None):
        self.path = path
        self.root = path / "root"
        self.ds = self.root / "ds"
        self.outside_wav = path / "outside.wav"
        self.outside_dir = path / "outside-dir"
        self.runs = runs or path / "runs"
        self.checkpoints = path / "checkpoints"

    @property
    def model(self) -> Path:
        """An untrained ``time`` model in ``checkpoints/`` (written on first use: torch
        loads only for the rows that need a model)."""
        path = self.checkpoints / "synth-time.safetensors"
        if not path.exists():
            from tfcnn.checkpoint import save_checkpoint
            from tfcnn.config import FRONT_END
            from tfcnn.models import build_model

            save_checkpoint(path, build_model("time", len(CLASSES)), classes=CLASSES,
                            norm_mean=0.0, norm_std=1.0, front_end=FRONT_END)
        return path

    def build(self) -> "Workdir":
        for i, dance in enumerate(CLASSES[:2]):
            (self.ds / dance).mkdir(parents=True)
            (self.outside_dir / dance).mkdir(parents=True)
            for k in range(3):
                write_wav(self.ds / dance / f"{dance}{k}.wav", freq=300.0 + 200 * i + 10 * k)
            write_wav(self.outside_dir / dance / "a.wav")
        # soundfile cannot write a non-UTF-8 name itself: write, then rename
        os.rename(write_wav(self.path / "t1.wav"), self.ds / CLASSES[1] / NON_UTF8)
        os.rename(write_wav(self.path / "t2.wav"), self.root / NON_UTF8)
        (self.root / ("junk-" + NON_UTF8)).write_bytes(b"not audio at all" * 20)
        (self.root / "loop1.wav").symlink_to(self.root / "loop2.wav")
        (self.root / "loop2.wav").symlink_to(self.root / "loop1.wav")
        os.mkfifo(self.root / "pipe.wav")
        full = write_wav(self.root / "full.wav").read_bytes()
        (self.root / "trunc.wav").write_bytes(full[: len(full) * 2 // 3])
        write_wav(self.outside_wav)
        (self.root / "escape.wav").symlink_to(self.outside_wav)
        (self.root / "escape-dir").symlink_to(self.outside_dir)
        self.runs.mkdir()
        return self

    def app_env(self, runs: Path) -> dict[str, str]:
        """The environment the app's pages run in: this folder's data and models, and the
        runs folder ``runs``."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("TFCNN_APP_PASSWORD", "TFCNN_MAX_RUNS")}
        env.update(TFCNN_DATA_DIR=str(self.path / "no-synth"), TFCNN_RUNS_DIR=str(runs),
                   TFCNN_CHECKPOINTS_DIR=str(self.checkpoints),
                   TFCNN_ALLOWED_ROOTS=str(self.root))
        return env

    def long_flac(self) -> Path:
        """A FLAC of 3 hours at 8 kHz (a half-second tone every 10 s, silence between): about
        3 MB that decodes to 1.9 GB of float32 at 44.1 kHz. Written once, in blocks."""
        path = self.path / "long-3h.flac"
        if not path.exists():
            block = np.zeros(10 * LONG_FLAC_RATE, dtype=np.float32)  # 10 s
            burst = np.arange(LONG_FLAC_RATE // 2)
            block[: burst.size] = 0.3 * np.sin(2 * np.pi * 440.0 * burst / LONG_FLAC_RATE)
            with sf.SoundFile(path, "w", LONG_FLAC_RATE, 1, subtype="PCM_16") as f:
                for _ in range(int(LONG_FLAC_HOURS * 3600 / 10)):
                    f.write(block)
        return path


def cuda_present() -> bool:
    """Whether torch sees a CUDA device here (torch loads on first call)."""
    import torch

    return torch.cuda.is_available()
