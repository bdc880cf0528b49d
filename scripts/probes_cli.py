"""The CLI and run-folder probes: each runs ``python -m tfcnn ...`` for real in the probes'
temporary folder and returns ``{row id: Outcome}``."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from scripts.probe_kit import (
    NON_UTF8,
    REPO,
    SR,
    Outcome,
    Proc,
    Workdir,
    classify,
    cli_outcome,
    cuda_present,
    run_process,
    stderr_line,
    tfcnn_cli,
)
from tfcnn.config import CLASSES
from tfcnn.runs import read_progress, read_run
from tfcnn.ui.serve import free_port, listening_addresses


#: Peak memory the CLI may reach on the 3 h FLAC: a few hundred MB above the ~0.38 GB
#: `predict` takes for a 4 s file.
BOMB_PEAK_MB = 750


@dataclass(frozen=True)
class CliCase:
    """One ``python -m tfcnn`` call: its arguments (given the work folder), the class it must
    get, a text stderr must hold, files it must not leave and texts stdout must hold."""

    argv: Callable[[Workdir], list[str]]
    want: str
    needle: str | None = None
    absent: tuple[str, ...] = ()
    stdout_has: tuple[str, ...] = ()
    cpu_only: bool = False


def probe_cli_case(case: CliCase, row_id: str, w: Workdir) -> dict[str, Outcome]:
    """Run ``case`` and classify it (:func:`scripts.probe_kit.classify`)."""
    if case.cpu_only and cuda_present():
        return {row_id: Outcome("not run", "CUDA is present on this machine")}
    proc = tfcnn_cli(*case.argv(w), cwd=w.path)
    left = [name for name in case.absent if (w.path / name).exists()]
    missing = [s for s in case.stdout_has if s not in proc.stdout]
    detail = stderr_line(proc)[:160]
    if left:
        detail += f" · left behind: {', '.join(left)}"
    if missing:
        detail += f" · stdout lacks {missing}"
    if case.want.startswith("ok") and not detail:
        detail = next((s for s in proc.stdout.splitlines() if s.strip()), "")[:160]
    return {row_id: cli_outcome(proc, want=case.want, how="CLI subprocess", needle=case.needle,
                                extra_ok=not left and not missing, detail=detail)}


def predict_argv(path: Callable[[Workdir], str]) -> Callable[[Workdir], list[str]]:
    """``predict PATH --checkpoint <the untrained model>``, given the work folder."""
    return lambda w: ["predict", path(w), "--checkpoint", str(w.model)]


def train_argv(*args: str, out: str) -> Callable[[Workdir], list[str]]:
    """``train <the small data set> --arch time --folds 2 ARGS --out <folder>/OUT``."""
    return lambda w: ["train", str(w.ds), "--arch", "time", "--folds", "2", *args, "--out",
                      str(w.path / out)]


def probe_features_sigterm(w: Workdir) -> dict[str, Outcome]:
    """SIGTERM to ``features --workers 2`` once both workers run; count what outlives it."""
    data = w.path / "big"
    rng = np.random.default_rng(0)
    for dance in CLASSES[:2]:
        (data / dance).mkdir(parents=True)
        for k in range(12):
            sf.write(data / dance / f"{k}.wav",
                     (0.1 * rng.standard_normal(SR * 20)).astype(np.float32), SR)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tfcnn", "features", str(data), "--workers",
                             "2", "--quiet"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)

    def group() -> list[int]:
        ps = subprocess.run(["ps", "-o", "pid=", "-g", str(proc.pid)], capture_output=True,
                            text=True).stdout
        return [int(p) for p in ps.split()]

    try:
        deadline = time.monotonic() + 90
        while len(group()) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if len(group()) < 3:
            return {"cli-features-sigterm": Outcome("not run", "the workers never started",
                                                    how="CLI subprocess + ps")}
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=60)
        deadline = time.monotonic() + 15
        while group() and time.monotonic() < deadline:
            time.sleep(0.2)
        orphans = group()
        err = [line for line in proc.stderr.read().decode("utf-8", "replace").splitlines()
               if line.strip()]
        now = "no orphans" if not orphans else f"{len(orphans)} orphan process(es)"
        if err != ["error: interrupted"]:
            now += f", {len(err)} stderr lines"
        return {"cli-features-sigterm": Outcome(
            f"{now}, exit {code}", " / ".join(err)[:160], not orphans and err ==
            ["error: interrupted"], round(time.monotonic() - start, 1),
            how="CLI subprocess, SIGTERM, then `ps -g` of its process group")}
    finally:
        for pid in group():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.wait()


def probe_cache_corruption(w: Workdir) -> dict[str, Outcome]:
    """Build a cache, flip bytes in one entry and plant 9.2e19 (old checksum) in another."""
    data = w.path / "cached"
    shutil.copytree(w.ds, data, ignore=shutil.ignore_patterns(NON_UTF8, ".tfcnn-cache"))
    first = tfcnn_cli("features", str(data), "--quiet", "--workers", "1", cwd=w.path)
    files = sorted(data.glob(".tfcnn-cache/*/*.npz"))
    if first.returncode != 0 or len(files) < 2:
        return {"cache-corruption": Outcome("not run", f"cache not built: {first.err_lines}",
                                            how="CLI subprocess")}
    raw = bytearray(files[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    files[0].write_bytes(bytes(raw))
    with np.load(files[1]) as entry:
        fields = {key: entry[key].copy() for key in entry.files}
    fields["spec"][3, 5] = 9.2e19  # with the checksum of the old values
    with open(files[1], "wb") as f:
        np.savez(f, **fields)
    proc = tfcnn_cli("features", str(data), "--quiet", "--workers", "1", cwd=w.path)
    warned = [line for line in proc.err_lines if line.startswith("warning:")]
    named = all(any(f.name in line for line in warned) for f in files[:2])
    computed = re.search(r"computed (\d+)", proc.stdout)
    n = int(computed.group(1)) if computed else -1
    detail = f"{len(warned)} warning lines naming the entries; computed {n} again"
    if warned:
        detail += f" · {warned[0][:110]}"
    return {"cache-corruption": Outcome(
        "named and recomputed" if named and n == 2 else classify(proc), detail,
        proc.returncode == 0 and named and n == 2, round(proc.seconds, 1),
        round(proc.peak_rss_mb), "CLI `features` twice; bytes flipped between")}


def _crafted_checkpoint(w: Workdir, name: str, *, arch: str, arch_changes: dict | None = None,
                        front_end_changes: dict | None = None) -> Path:
    """A valid checkpoint whose header is rewritten to ask for other sizes (weights kept)."""
    # torch loads only for the rows that build a model
    from safetensors import safe_open
    from safetensors.torch import save_file

    from tfcnn.checkpoint import META_KEY, save_checkpoint
    from tfcnn.config import FRONT_END
    from tfcnn.models import build_model

    path = w.path / name
    save_checkpoint(path, build_model(arch, len(CLASSES)), classes=CLASSES, norm_mean=0.0,
                    norm_std=1.0, front_end=FRONT_END)
    with safe_open(str(path), "pt") as f:
        header = dict(f.metadata())
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    meta = json.loads(header[META_KEY])
    meta["arch_params"] = {**meta["arch_params"], **(arch_changes or {})}
    meta["front_end"] = {**meta["front_end"], **(front_end_changes or {})}
    save_file(tensors, str(path), metadata={**header, META_KEY: json.dumps(meta)})
    return path


def probe_checkpoint_headers(w: Workdir) -> dict[str, Outcome]:
    """``predict`` with headers asking for 10**8 filters and a hop of one sample."""
    how = "CLI `predict` with a rewritten header; wait4 peak RSS"
    out = {}
    for row, path, needle in [
        ("ckpt-n-filters", _crafted_checkpoint(w, "huge.safetensors", arch="blackbox",
                                               arch_changes={"n_filters": 10**8}), "n_filters"),
        ("ckpt-hop-1", _crafted_checkpoint(w, "hop1.safetensors", arch="time",
                                           front_end_changes={"hop_length": 1}), "hop_length"),
    ]:
        proc = tfcnn_cli("predict", str(w.root / "full.wav"), "--checkpoint", str(path),
                         cwd=w.path)
        out[row] = cli_outcome(proc, want="one-line error", how=how, needle=needle,
                               extra_ok=proc.peak_rss_mb < 1024 and proc.seconds < 60)
    return out


def probe_resume(w: Workdir) -> dict[str, Outcome]:
    """kill -9 during the first fold of a default (fold-parallel) run, then ``--resume``:
    the first epoch the resumed run logs tells how much was kept."""
    out_dir = w.path / "run-killed"
    args = ["train", str(w.ds), "--arch", "time", "--folds", "2", "--epochs", "300",
            "--quiet", "--out", str(out_dir)]

    def epochs() -> list[dict]:
        try:
            return [e for e in read_progress(out_dir) if e.get("event") == "epoch"]
        except Exception:  # noqa: BLE001 - a torn or missing file counts as no epoch yet
            return []

    def start_and_kill(*extra: str, until: Callable[[list[dict]], bool]) -> tuple[bool, float]:
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        begin = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "tfcnn", *args, *extra], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            while time.monotonic() - begin < 240 and proc.poll() is None:
                if until(epochs()):
                    return True, time.monotonic() - begin
                time.sleep(0.05)
            return False, time.monotonic() - begin
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    ok, s1 = start_and_kill(until=lambda ev: sum(e.get("fold") == 0 for e in ev) >= 3)
    before = epochs()
    done = max((e["epoch"] for e in before if e.get("fold") == 0), default=0)
    if not ok:
        return {"run-kill-resume": Outcome("not run", "no 3 epochs of fold 0 within 240 s",
                                           how="CLI subprocess")}
    n_before = len(before)
    ok, s2 = start_and_kill("--resume",
                            until=lambda ev: any(e.get("fold") == 0 for e in ev[n_before:]))
    resumed = [e for e in epochs()[n_before:] if e.get("fold") == 0]
    if not resumed:
        return {"run-kill-resume": Outcome("no epoch after --resume", how="CLI subprocess")}
    first = resumed[0]["epoch"]
    lost = done - (first - 1)
    return {"run-kill-resume": Outcome(
        f"resumed at epoch {first} after kill -9 at epoch {done}: {lost} epoch(s) lost",
        f"fold 0; {round(s1)} s then {round(s2)} s", lost <= 1, round(s1 + s2, 1),
        how="CLI `train` (default mode), kill -9 of its group, then `--resume`")}


def _failed_run(out_dir: Path, proc: Proc, how: str) -> Outcome:
    """A run that met a full disk: one ``error:`` line, status ``failed``, a readable folder
    whose ``progress.jsonl`` ends with a whole line."""
    try:
        state = read_run(out_dir).status
    except Exception as exc:  # noqa: BLE001 - the probe reports whatever breaks
        state = f"unreadable ({type(exc).__name__}: {exc})"[:80]
    progress = out_dir / "progress.jsonl"
    torn = progress.exists() and progress.stat().st_size > 0 \
        and not progress.read_bytes().endswith(b"\n")
    left = sorted(p.name for p in out_dir.glob(".*")) if out_dir.is_dir() else []
    now = classify(proc)
    detail = (f"status {state}; progress.jsonl "
              f"{'torn' if torn else 'whole' if progress.exists() else 'absent'}"
              + (f"; left: {', '.join(left)}" if left else "") + f" · {stderr_line(proc)[:110]}")
    return Outcome(now, detail, now == "one-line error" and state == "failed" and not torn,
                   round(proc.seconds, 1), round(proc.peak_rss_mb) or None, how)


def _refused_run(out_dir: Path, proc: Proc, how: str) -> Outcome:
    """A new run that could not start on a full disk: one ``error:`` line and no folder (a
    half-written one would read as an interrupted run)."""
    left = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else None
    now = classify(proc)
    detail = ("nothing left" if left is None else f"folder left: {', '.join(left) or 'empty'}") \
        + f" · {stderr_line(proc)[:110]}"
    return Outcome(now, detail, now == "one-line error" and left is None,
                   round(proc.seconds, 1), round(proc.peak_rss_mb) or None, how)


def _fill(path: Path) -> None:
    """Write zeros to ``path`` until the file system is full."""
    with open(path, "wb", buffering=0) as fh:  # unbuffered: close() has nothing to flush
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


def probe_full_disk(w: Workdir) -> dict[str, Outcome]:
    """``train --out`` on a 1 MB tmpfs, filled during the run (after two epochs) and full
    before it starts (16 KB free): each must end with one line, a ``failed`` status and a
    readable folder."""
    mount = w.path / "small-disk"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        return {row: Outcome("not run", f"cannot mount a tmpfs: {exc}")
                for row in ("run-full-disk", "run-full-disk-start")}
    args = ["train", str(w.ds), "--arch", "time", "--folds", "2", "--epochs", "200", "--quiet"]
    out = {}
    try:
        during = mount / "during"
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        begin = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "tfcnn", *args, "--out", str(during)],
                                cwd=w.path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            while proc.poll() is None and time.monotonic() - begin < 180:
                epochs = [e for e in read_progress(during) if e.get("event") == "epoch"] \
                    if (during / "progress.jsonl").exists() else []
                if len(epochs) >= 2:
                    break
                time.sleep(0.05)
            _fill(mount / "filler")
            _, err = proc.communicate(timeout=180)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            code = None
        result = Proc(code, "", err.decode("utf-8", "replace"), time.monotonic() - begin, 0.0)
        out["run-full-disk"] = _failed_run(during, result,
                                           "CLI `train` into a 1 MB tmpfs, filled after "
                                           "2 epochs")
        (mount / "filler").unlink()
        shutil.rmtree(during)
        (mount / "filler").write_bytes(b"\0" * (1024 * 1024 - 16 * 1024))
        start = mount / "start"
        out["run-full-disk-start"] = _refused_run(
            start, tfcnn_cli(*args, "--out", str(start), cwd=w.path),
            "CLI `train` into a 1 MB tmpfs left with 16 KB free")
        return out
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def probe_long_flac_cli(w: Workdir) -> dict[str, Outcome]:
    """``predict`` a 3 h FLAC: decoded block by block, its peak memory must stay bounded."""
    path = w.long_flac()
    proc = tfcnn_cli("predict", str(path), "--checkpoint", str(w.model), cwd=w.path,
                     timeout_s=590)
    size = path.stat().st_size / 2**20
    now = classify(proc)
    return {"cli-bomb-3h": Outcome(
        f"{now}, peak {proc.peak_rss_mb:.0f} MB", f"{size:.1f} MB FLAC of 3 h at 8 kHz · "
        # the first stdout line is "<path>: <class>  (<n> patches of <s> s)"
        + (proc.stdout.splitlines()[0].rsplit(": ", 1)[-1] if proc.stdout else
           stderr_line(proc)[:100]),
        now == "ok" and proc.peak_rss_mb < BOMB_PEAK_MB, round(proc.seconds, 1),
        round(proc.peak_rss_mb), "CLI `predict`, wait4 peak RSS")}


def probe_serve(w: Workdir) -> dict[str, Outcome]:
    """``make run`` on a free port (its sockets from /proc/net/tcp*) and the launcher on
    0.0.0.0 without a password."""
    data = w.path / "serve-data"
    data.mkdir()
    (data / "metadata.csv").write_text("track,dance\n")
    port = free_port()
    out = {}
    start = time.monotonic()
    proc = subprocess.Popen(["make", "-s", "-o", ".venv/bin/.installed", "run", f"PORT={port}",
                             f"DATA={data}"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while (not listening_addresses(port) and proc.poll() is None
               and time.monotonic() - start < 120):
            time.sleep(0.3)
        time.sleep(1.0)  # let every socket (v4 and v6) open
        shown = listening_addresses(port)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out["app-listen"] = Outcome(
        "loopback only" if shown == ["127.0.0.1"] else f"listens on {shown or 'nothing'}",
        f"`make run PORT={port}` listens on {', '.join(shown) or 'nothing'}",
        shown == ["127.0.0.1"], round(time.monotonic() - start, 1),
        how="`make run`, listening sockets from /proc/net/tcp*")
    env = {k: v for k, v in os.environ.items() if k != "TFCNN_APP_PASSWORD"}
    port = free_port()
    proc = run_process([sys.executable, "-m", "tfcnn.ui.serve", "--host", "0.0.0.0", "--port",
                        str(port)], cwd=w.path, env=env, timeout_s=60)
    out["app-open-no-password"] = cli_outcome(
        proc, want="one-line error", how="`python -m tfcnn.ui.serve --host 0.0.0.0`",
        needle="without a password", extra_ok=not listening_addresses(port))
    return out
