"""The feature cache: each track's log-mel computed once, stored next to the data, reused.

Layout: ``<dataset.root>/.tfcnn-cache/<front-end hash>/<entry>.npz``, one float32 array of
shape (n_mels, T) per track, stored with the SHA-256 of its bytes and the front-end settings
it was computed with. The folder name hashes the log-mel's parameters and
:data:`FORMAT_VERSION`, so another front end (or a change of the file format) never reads
stale features; the model's input options (patch width, beat-synchronous frames) are cut
from the cached log-mel and do not enter the key. An entry's name hashes the track's path relative to the root, its size and
its mtime in nanoseconds: an edited, replaced or added file gets a new name and is computed
again, the others are read back.

Entries are written to a temporary name in the same folder and moved into place with
``os.replace``; a crash mid-way leaves at most a ``*.tmp`` file, which never counts as an
entry. An entry that cannot be read back (truncated, wrong shape, a checksum or front end
that does not match: flipped bytes on disk) is named in a :class:`CacheWarning` and computed
again; the run goes on.

If the data folder is read-only, entries go to a user cache folder instead
(``$TFCNN_CACHE_HOME``, else ``$XDG_CACHE_HOME/tfcnn``, else ``~/.cache/tfcnn``), keyed by the
data folder's absolute path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import stat
import tempfile
import threading
import warnings
import zipfile
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from tfcnn.atomic import atomic_path, write_bytes_atomic
from tfcnn.audio import load_audio
from tfcnn.procs import die_with_parent
from tfcnn.config import FRONT_END, FrontEnd
from tfcnn.datasets import Dataset
from tfcnn.errors import AudioError, CacheWarning, ConfigError
from tfcnn.features import log_mel
from tfcnn.threads import torch_threads

#: Bumped whenever the stored arrays change meaning or format; part of the folder hash.
FORMAT_VERSION = 3  # 2: Essentia framing, T = 1 + ceil(n / hop); 3: checksummed .npz entries
#: File suffix of a cache entry.
ENTRY_SUFFIX = ".npz"
#: Name of the cache folder inside a data set's root (hidden, so readers skip it).
CACHE_DIRNAME = ".tfcnn-cache"

ProgressFn = Callable[[int, int], None]


@dataclass
class FeatureSet:
    """Log-mel spectrograms of every track of a data set, in the order of its Track table.

    Attributes
    ----------
    specs : list of np.ndarray, each shape (n_mels, T_i), float32
        Compressed log-mel, not normalised (normalisation belongs to a fold).
    labels : np.ndarray, shape (n_tracks,), int64
        Class index per track (``dataset.tracks.label``).
    track_ids : list of str
        ``dataset.tracks.track``.
    n_computed : int
        How many tracks this call decoded and computed (the rest came from the cache).
    cache_dir : Path or None
        The folder the entries were read from / written to.
    """

    specs: list[np.ndarray]
    labels: np.ndarray
    track_ids: list[str]
    n_computed: int = 0
    cache_dir: Path | None = field(default=None, compare=False)


# --------------------------------------------------------------------------- locations

def front_end_key(front_end: FrontEnd = FRONT_END) -> str:
    """Hash of the log-mel's parameters and :data:`FORMAT_VERSION` (16 hex digits).

    Only what decides the log-mel (:meth:`FrontEnd.log_mel_part`): a longer patch or a
    beat-synchronous input is cut from the same cached log-mel, at training and prediction
    (:func:`tfcnn.features.model_input`), so it shares the paper input's cache.
    """
    payload = json.dumps({"front_end": front_end.log_mel_part().to_dict(),
                          "format": FORMAT_VERSION},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _user_cache_home() -> Path:
    if os.environ.get("TFCNN_CACHE_HOME"):
        return Path(os.environ["TFCNN_CACHE_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tfcnn"


def _candidate_dirs(root: Path, front_end: FrontEnd) -> tuple[Path, Path]:
    """(next to the data, user fallback) cache folders for this root and front end."""
    root = Path(root).resolve()
    key = front_end_key(front_end)
    root_key = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return (root / CACHE_DIRNAME / key,
            _user_cache_home() / f"{root.name}-{root_key}" / key)


def _writable_dir(path: Path) -> bool:
    """Create ``path`` if needed and check a file can be written there (works as root too)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def cache_dir(dataset: Dataset, *, front_end: FrontEnd = FRONT_END) -> Path:
    """The folder :func:`load_features` writes to (created): next to the data if writable.

    Raises
    ------
    ConfigError
        Neither the data folder nor the user cache folder is writable.
    """
    primary, fallback = _candidate_dirs(dataset.root, front_end)
    for path in (primary, fallback):
        if _writable_dir(path):
            if not (path / "front_end.json").exists():
                write_bytes_atomic(path / "front_end.json", json.dumps(
                    {"front_end": front_end.log_mel_part().to_dict(), "format": FORMAT_VERSION,
                     "data_root": str(Path(dataset.root).resolve())}, indent=2).encode())
            return path
    raise ConfigError(f"cannot write a feature cache in {primary} nor in {fallback}; "
                      f"set TFCNN_CACHE_HOME to a writable folder")


def _entry_name(root: Path, path: str | os.PathLike) -> str:
    """``<hash>.npz`` of (path relative to the root, size, mtime_ns); AudioError if missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AudioError(f"{path}: audio file is missing") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot read audio file: {exc}") from None
    try:
        rel = Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        rel = str(Path(path).resolve())
    key = f"{rel}\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32] + ENTRY_SUFFIX


# --------------------------------------------------------------------------- entries

def _checksum(spec: np.ndarray) -> str:
    """SHA-256 of an array's bytes (hex)."""
    return hashlib.sha256(np.ascontiguousarray(spec).tobytes()).hexdigest()


def _front_end_json(front_end: FrontEnd) -> str:
    return json.dumps(front_end.log_mel_part().to_dict(), sort_keys=True)


def _write_entry(path: Path, spec: np.ndarray, front_end: FrontEnd) -> None:
    """Store one spectrogram with its checksum and front end, atomically (tmp + replace)."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, spec=spec, sha256=np.array(_checksum(spec)),
                     front_end=np.array(_front_end_json(front_end)))
    except OSError:
        pass  # a full or vanished disk costs a recomputation later, never a corrupt entry


def _entry_shape_problem(path: Path) -> str | None:
    """Why an entry may not be loaded, judged before any array is allocated: it must be a
    regular file in the cache folder (an entry is always written as one: a symlink may
    point out of the allowed folders, a device or FIFO never ends), its members stored
    uncompressed (no zip bomb), and each array's header may not announce more bytes than
    its member holds (numpy allocates what the header says before reading)."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a symlink, device or pipe)"
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if member.compress_type != zipfile.ZIP_STORED:
                return f"compressed member {member.filename}"
            with archive.open(member) as fh:
                version = np.lib.format.read_magic(fh)
                shape, _, dtype = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0(fh))
            if int(np.prod(shape, dtype=object)) * dtype.itemsize > member.file_size:
                return f"{member.filename} announces shape {shape}, more than it holds"
    return None


def _read_entry(path: Path, front_end: FrontEnd) -> np.ndarray | None:
    """The stored spectrogram, or None if it is unusable (then it is computed again).

    A damaged entry (unreadable, wrong shape, checksum or front end) is named in a
    :class:`CacheWarning`.
    """
    try:
        problem = _entry_shape_problem(path)
        if problem is None:
            entry = np.load(path, allow_pickle=False)
            if not isinstance(entry, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with entry:
                spec, digest = entry["spec"], str(entry["sha256"])
                made_with = str(entry["front_end"])
    except (OSError, ValueError, EOFError, KeyError, MemoryError, zipfile.BadZipFile) as exc:
        problem = f"unreadable: {type(exc).__name__}"
    if problem is None:
        # (n_mels, T) float32 with at least one frame, the bytes that were written, made
        # with this front end; anything else is a damaged entry.
        if (spec.dtype != np.float32 or spec.ndim != 2 or spec.shape[0] != front_end.n_mels
                or spec.shape[1] < 1):
            problem = f"array of shape {spec.shape} and type {spec.dtype}"
        elif digest != _checksum(spec):
            problem = "checksum mismatch"
        elif made_with != _front_end_json(front_end):
            problem = "made with other front-end settings"
        else:
            return spec
    warnings.warn(CacheWarning(f"{path}: damaged feature cache entry ({problem}); "
                               "computing it again"), stacklevel=3)
    return None


def compute_spec(path: str | os.PathLike, *, front_end: FrontEnd = FRONT_END,
                 max_duration_s: float | None = None) -> np.ndarray:
    """Decode one file and compute its log-mel: the one front end (load_audio → log_mel).

    ``max_duration_s``: refuse longer audio (:func:`tfcnn.audio.load_audio`; the app's
    limit on the Data page).

    Returns
    -------
    np.ndarray, shape (n_mels, T), float32
    """
    y = load_audio(path, sample_rate=front_end.sample_rate,
                   max_duration_s=max_duration_s)  # (n_samples,) mono
    return log_mel(y, front_end.sample_rate, front_end=front_end)


def _init_worker() -> None:
    # A worker must not outlive the process that waits for its results.
    die_with_parent()
    # Each worker process owns one core: torch's own thread pool would oversubscribe them.
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)


def _one_torch_thread():
    """Compute in this process on one torch thread, as a worker does, then restore.

    One STFT of a 30 s clip is too small to split across intra-op threads: on a busy
    machine they make it slower, not faster.
    """
    return torch_threads(1)


def _mp_context() -> multiprocessing.context.BaseContext:
    """How worker processes start: fork when safe, else a fork server, else spawn.

    fork is fastest (torch is already imported) but only safe while this process runs a
    single thread: in a threaded one (the Streamlit server, a tqdm monitor) a child can
    inherit a lock another thread held and hang. The fork server is a clean single-threaded
    process that imports this module (and torch) once, then forks every worker from it.
    Like any non-fork start, it re-imports a calling script's ``__main__``: scripts that call
    :func:`load_features` with ``workers > 1`` need an ``if __name__ == "__main__":`` guard.
    """
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])  # no effect once the server runs: harmless
        return ctx
    return multiprocessing.get_context("spawn")


def _compute_and_store(path: str, entry: str, front_end: FrontEnd) -> np.ndarray:
    spec = compute_spec(path, front_end=front_end)
    _write_entry(Path(entry), spec, front_end)
    return spec


# --------------------------------------------------------------------------- public API

def cache_state(dataset: Dataset, *, front_end: FrontEnd = FRONT_END) -> tuple[int, int]:
    """How many tracks already have a cache entry: ``(n_cached, n_total)``.

    Cheap (no decoding, no reading of entries, nothing created); a missing audio file counts
    as not cached.
    """
    dirs = _candidate_dirs(dataset.root, front_end)
    n_cached = 0
    for path in dataset.tracks["path"]:
        try:
            name = _entry_name(dataset.root, path)
        except AudioError:
            continue
        n_cached += any((d / name).is_file() for d in dirs)
    return n_cached, len(dataset.tracks)


def prune_cache(dataset: Dataset, *, front_end: FrontEnd = FRONT_END) -> tuple[int, int]:
    """Delete cache entries that no track of ``dataset`` uses any more; ``(files, bytes)``.

    An edited, replaced or removed file leaves its old entry behind (entries are keyed by
    path, size and mtime); so does a crash mid-write (``*.tmp``). This removes, from this
    front end's folders of this data set, every entry whose name no current track has and
    every ``*.tmp``. Other front ends' folders are left alone. Run it on the whole data set
    (a :class:`Dataset` restricted to some tracks would lose the others' entries).
    """
    keep = set()
    for path in dataset.tracks["path"]:
        with contextlib.suppress(AudioError):  # a missing track has no entry to keep
            keep.add(_entry_name(dataset.root, path))
    n_files = n_bytes = 0
    for folder in _candidate_dirs(Path(dataset.root), front_end):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            stale = entry.suffix == ".tmp" or (entry.suffix == ENTRY_SUFFIX
                                               and entry.name not in keep)
            if entry.is_file() and stale:
                size = entry.stat().st_size
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    n_files, n_bytes = n_files + 1, n_bytes + size
    return n_files, n_bytes


def load_features(
    dataset: Dataset,
    *,
    front_end: FrontEnd = FRONT_END,
    workers: int = 2,
    progress: ProgressFn | None = None,
) -> FeatureSet:
    """Log-mel of every track of ``dataset``, from the cache where possible.

    Parameters
    ----------
    dataset : Dataset
    front_end : FrontEnd, keyword-only
        Front-end parameters (paper §2 by default); part of the cache key.
    workers : int, keyword-only
        Processes that decode and compute missing entries in parallel (1: in this process).
    progress : callable(done, total), optional, keyword-only
        Called once with the number of cached tracks, then after each computed track.

    Returns
    -------
    FeatureSet
        ``specs[i]`` of shape (n_mels, T_i) belongs to ``dataset.tracks.iloc[i]``.

    Raises
    ------
    AudioError
        A track is missing or cannot be decoded (named in the message). Entries computed
        before the failure stay cached.
    ConfigError
        ``workers`` < 1, or no writable cache folder.
    """
    if int(workers) != workers or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    root = Path(dataset.root)
    paths = [str(p) for p in dataset.tracks["path"]]
    total = len(paths)
    primary, fallback = _candidate_dirs(root, front_end)
    write_dir = cache_dir(dataset, front_end=front_end)
    read_dirs = [write_dir] + [d for d in (primary, fallback) if d != write_dir]

    names = [_entry_name(root, p) for p in paths]
    specs: list[np.ndarray | None] = [None] * total
    todo: list[int] = []
    for i, name in enumerate(names):
        for d in read_dirs:
            if (d / name).is_file() and (spec := _read_entry(d / name, front_end)) is not None:
                specs[i] = spec
                break
        else:
            todo.append(i)
    done = total - len(todo)
    if progress is not None:
        progress(done, total)

    if len(todo) <= 1 or workers == 1:
        with _one_torch_thread():
            for i in todo:
                specs[i] = _compute_and_store(paths[i], str(write_dir / names[i]), front_end)
                done += 1
                if progress is not None:
                    progress(done, total)
    elif todo:
        pool = ProcessPoolExecutor(max_workers=min(int(workers), len(todo)),
                                   mp_context=_mp_context(), initializer=_init_worker)
        try:
            futures: dict[Future, int] = {
                pool.submit(_compute_and_store, paths[i], str(write_dir / names[i]),
                            front_end): i
                for i in todo
            }
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    specs[futures[fut]] = fut.result()  # re-raises a worker's AudioError
                    done += 1
                    if progress is not None:
                        progress(done, total)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    return FeatureSet(
        specs=specs,  # type: ignore[arg-type]  (every slot is filled above)
        labels=dataset.tracks["label"].to_numpy(dtype=np.int64),
        track_ids=[str(t) for t in dataset.tracks["track"]],
        n_computed=len(todo),
        cache_dir=write_dir,
    )
