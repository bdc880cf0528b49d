"""Fetch the official Ballroom archive: resumable, md5-verified, unpacked atomically.

The audio of Ballroom (698 excerpts, paper §2) is ``data1.tar.gz`` of the ISMIR 2004 tempo
induction contest, hosted by the MTG (Universitat Pompeu Fabra). It unpacks to
``BallroomData/`` with the folders ChaChaCha, Jive, Quickstep, Rumba-American,
Rumba-International, Rumba-Misc, Samba, Tango, VienneseWaltz and Waltz.

What a user sees on disk, and when:

- ``<to_dir>/data1.tar.gz.partial`` while downloading (a later call resumes it with an HTTP
  ``Range`` request);
- ``<to_dir>/.tfcnn-unpack-*/`` while unpacking (removed on the next call if a crash left it);
- ``<to_dir>/BallroomData/`` only once the archive verified and unpacked completely: it
  appears by one ``os.replace``, so a folder of that name is always complete.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from tfcnn.errors import DatasetError

if TYPE_CHECKING:
    from tfcnn.datasets import Dataset

#: Official location of the Ballroom audio (ISMIR 2004 tempo contest, MTG-UPF).
BALLROOM_URL = "https://mtg.upf.edu/ismir2004/contest/tempoContest/data1.tar.gz"
#: md5 of ``data1.tar.gz`` as published with the CPJKU BallroomAnnotations.
BALLROOM_MD5 = "2872a3e52070bc342a4510a95e2fa0b8"
#: File name of the archive in the target folder.
BALLROOM_ARCHIVE = "data1.tar.gz"

_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60.0
_UNPACK_PREFIX = ".tfcnn-unpack-"


class _NoBar:
    """Stands in for a tqdm bar when progress is off."""

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _bar(progress: bool, **kwargs):
    """A tqdm bar, or nothing at all (even a disabled tqdm starts a monitor thread)."""
    if not progress:
        return _NoBar()
    from tqdm import tqdm  # off the import of this module, which `download --help` reads

    return tqdm(**kwargs)


def file_md5(path: str | Path, *, progress: bool = False) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    path = Path(path)
    digest = hashlib.md5()
    with open(path, "rb") as f, _bar(progress, total=path.stat().st_size, unit="B",
                                     unit_scale=True, desc=f"md5 {path.name}") as bar:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _fetch(url: str, partial: Path, *, progress: bool) -> None:
    """Download ``url`` into ``partial``, continuing an existing partial file by HTTP Range."""
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "tfcnn"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return  # the partial file already holds every byte; the md5 check decides
        raise DatasetError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        resume = f", or run again to resume ({partial} is kept)" if offset else ""
        raise DatasetError(
            f"cannot download {url}: {reason}. Download it by hand and pass "
            f"--archive FILE{resume}"
        ) from exc
    with response:
        resumed = bool(offset) and getattr(response, "status", None) == 206
        if not resumed:
            offset = 0  # the server sent the whole file (no Range support, or file://)
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        try:
            with open(partial, "ab" if resumed else "wb") as out, _bar(
                progress, total=total, initial=offset, unit="B", unit_scale=True,
                desc=PurePosixPath(url).name or "download",
            ) as bar:
                while chunk := response.read(_CHUNK_BYTES):
                    out.write(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise DatasetError(
                f"download of {url} interrupted after {partial.stat().st_size} bytes: {exc!r}; "
                f"run again to resume"
            ) from exc
    if total is not None and partial.stat().st_size < total:
        raise DatasetError(
            f"download of {url} stopped after {partial.stat().st_size} of {total} bytes; "
            f"run again to resume ({partial} is kept)"
        )


def _check_members(tar: tarfile.TarFile, archive: Path) -> None:
    """Refuse members that would land outside the target (absolute paths, ``..``, links)."""
    for m in tar.getmembers():
        p = PurePosixPath(m.name)
        if p.is_absolute() or ".." in p.parts:
            raise DatasetError(f"{archive}: unsafe member path {m.name!r}; not unpacking")
        if (m.issym() or m.islnk()) and (PurePosixPath(m.linkname).is_absolute()
                                          or ".." in PurePosixPath(m.linkname).parts):
            raise DatasetError(f"{archive}: member {m.name!r} links outside the archive "
                               f"({m.linkname!r}); not unpacking")
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise DatasetError(f"{archive}: member {m.name!r} is not a file or folder")


def unpack_ballroom(archive: str | Path, to_dir: str | Path) -> Path:
    """Unpack a Ballroom archive into ``to_dir/BallroomData`` atomically.

    The archive is extracted into a hidden temporary folder next to the target, checked with
    :func:`tfcnn.datasets.load_dataset`, then moved into place with one ``os.replace``.

    Returns
    -------
    Path
        ``to_dir/BallroomData``.

    Raises
    ------
    DatasetError
        Not a tar.gz, unsafe member paths, no ``BallroomData/`` inside, no known track, or
        the target already exists.
    """
    # pandas (through datasets) stays off the import of this module (`download --help`).
    from tfcnn.datasets import BALLROOM_ARCHIVE_DIR, load_dataset

    archive, to_dir = Path(archive), Path(to_dir)
    target = to_dir / BALLROOM_ARCHIVE_DIR
    if target.exists():
        raise DatasetError(f"{target} already exists; remove it to unpack {archive} again")
    tmp = Path(tempfile.mkdtemp(prefix=_UNPACK_PREFIX, dir=to_dir))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                _check_members(tar, archive)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, filter="data")
                else:  # pragma: no cover - Python < 3.11.4; members were checked above
                    tar.extractall(tmp)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DatasetError(f"cannot unpack {archive}: {exc}") from exc
        unpacked = tmp / BALLROOM_ARCHIVE_DIR
        if not unpacked.is_dir():
            top = sorted(p.name for p in tmp.iterdir())
            raise DatasetError(f"{archive} has no {BALLROOM_ARCHIVE_DIR}/ folder at its top "
                               f"(found: {', '.join(top) or 'nothing'})")
        dataset = load_dataset(unpacked)
        if dataset.kind != "ballroom":
            raise DatasetError(f"{archive} does not hold the Ballroom data set")
        os.replace(unpacked, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def download_ballroom(
    to_dir: str | Path,
    *,
    url: str = BALLROOM_URL,
    md5: str | None = BALLROOM_MD5,
    progress: bool = True,
    archive: str | Path | None = None,
    keep_archive: bool = False,
) -> Dataset:
    """Download (or take a local copy of) ``data1.tar.gz``, verify it, unpack it, read it.

    Parameters
    ----------
    to_dir : str or Path
        Folder that receives ``BallroomData/`` (created if missing).
    url : str
        Where to download from (``http(s)://`` or ``file://``). Ignored with ``archive``.
    md5 : str or None
        Expected hex md5 of the archive; None skips the check.
    progress : bool
        Show tqdm bars for the download and the md5 check.
    archive : str or Path, optional
        A ``data1.tar.gz`` the user downloaded by hand; used instead of the network and never
        modified or deleted.
    keep_archive : bool
        Keep the downloaded ``data1.tar.gz`` after a successful unpack (default: delete it).

    Returns
    -------
    Dataset
        The Ballroom data set read from ``to_dir/BallroomData`` (its ``report`` says how many
        of the 698 tracks are present).

    Raises
    ------
    DatasetError
        Download failure (the partial file is kept for a resume), md5 mismatch (the bad
        download is deleted), or an archive that does not unpack to Ballroom.
    """
    from tfcnn.datasets import BALLROOM_ARCHIVE_DIR, load_dataset  # as in unpack_ballroom

    to_dir = Path(to_dir).expanduser()
    target = to_dir / BALLROOM_ARCHIVE_DIR
    if target.is_dir():
        return load_dataset(target)  # complete by construction: it only appears by os.replace
    try:
        to_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create {to_dir}: {exc}") from exc
    for stale in to_dir.glob(_UNPACK_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by an unpack that crashed

    if archive is not None:
        archive = Path(archive).expanduser()
        if not archive.is_file():
            raise DatasetError(f"archive {archive} does not exist or is not a file")
        if md5:
            got = file_md5(archive, progress=progress)
            if got != md5.lower():
                raise DatasetError(f"md5 of {archive} is {got}, expected {md5}: "
                                   f"not the official Ballroom archive, or a damaged copy")
        unpack_ballroom(archive, to_dir)
        return load_dataset(target)

    done = to_dir / BALLROOM_ARCHIVE
    partial = to_dir / (BALLROOM_ARCHIVE + ".partial")
    if not done.is_file():
        _fetch(url, partial, progress=progress)
        if md5:
            got = file_md5(partial, progress=progress)
            if got != md5.lower():
                partial.unlink(missing_ok=True)  # resuming a corrupt file cannot fix it
                raise DatasetError(f"md5 of the download from {url} is {got}, expected {md5}; "
                                   f"deleted it, run again to download afresh")
        os.replace(partial, done)  # only a verified archive carries the final name
    elif md5 and (got := file_md5(done, progress=progress)) != md5.lower():
        done.unlink(missing_ok=True)
        raise DatasetError(f"md5 of {done} is {got}, expected {md5}; deleted it, run again")
    unpack_ballroom(done, to_dir)
    if not keep_archive:
        done.unlink(missing_ok=True)
    return load_dataset(target)
