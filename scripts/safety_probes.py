"""The safety probes of the CLI and the web app, run for real, as one table.

``python -m scripts.safety_probes [--heavy] [--only IDS] [--out MD]``.

Each row is one hostile or unlucky input: a path typed into the app, a decompression bomb, a
checkpoint header asking for huge sizes, a signal at the wrong moment, a full disk. The
probes run in a fresh temporary folder against this checkout:

- the CLI as a real subprocess (``python -m tfcnn ...``, :mod:`scripts.probes_cli`): exit
  code, stderr, seconds, and the child's peak resident memory from :func:`os.wait4`;
- the app's pages under Streamlit's ``AppTest`` (:mod:`scripts.probes_app`), in a child
  process of this script, so a page that hangs or fills the memory is measured and killed
  at a timeout, not suffered.

Every outcome is classified (``one-line error``, ``traceback``, ``hang (timeout)``, ``ok``,
``refused`` ...) and checked against what the row must do; the table sets it beside what
was observed before the fixes. Output: ``docs/safety-probes.md`` and
``docs/safety-probes.json``; the exit code is 1 when a row is not met.

Usage::

    python -m scripts.safety_probes            # every row but the heavy one (minutes)
    python -m scripts.safety_probes --heavy    # also decode a 3 h FLAC on the CLI
    python -m scripts.safety_probes --only cli-lr-nan,cli-epochs-1e9 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from scripts import probes_app as app
from scripts import probes_cli as cli
from scripts.probe_kit import (
    NON_UTF8,
    REPO,
    Group,
    Outcome,
    Row,
    Workdir,
    cuda_present,
    run_process,
)
from scripts.probes_cli import CliCase
from tfcnn.atomic import write_json_atomic, write_text_atomic

#: Classes of a CLI run, counted in the summary (:func:`scripts.probe_kit.classify`).
CLI_CLASSES = ("one-line error", "traceback", "hang (timeout)", "ok")
#: Seconds an app group's child process may take before it counts as a hang.
APP_TIMEOUT_S = 300.0

# ----------------------------------------------------------------------------- the table

T_APP, T_BAD, T_TRAIN = "tests/test_app.py", "tests/test_bad_inputs.py", "tests/test_train.py"
CLI = f"{T_BAD}::test_cli_bad_input"
REFUSE = "the one refusal message"
NOT_LISTED = "not listed in the probe report"
_P = "Predict 'A file on this machine': "
_F = "sidebar Folder: "

CLI_CASES: tuple[tuple[Row, CliCase], ...] = (
    (Row("cli-symlink-loop", "CLI", "`predict` a symlink loop", "\"no such file\"",
         "one-line error: symbolic link loop", f"{CLI}[symlink-loop]"),
     CliCase(cli.predict_argv(lambda w: f"{w.root}/loop1.wav"), "one-line error",
             "symbolic link loop")),
    (Row("cli-dev-zero", "CLI", "`predict /dev/zero`", NOT_LISTED, "one-line error",
         f"{CLI}[dev-zero]"),
     CliCase(cli.predict_argv(lambda w: "/dev/zero"), "one-line error", "not a regular file")),
    (Row("cli-fifo", "CLI", "`predict` a named pipe", NOT_LISTED, "one-line error",
         f"{CLI}[fifo]"),
     CliCase(cli.predict_argv(lambda w: f"{w.root}/pipe.wav"), "one-line error",
             "not a regular file")),
    (Row("cli-non-utf8-predict", "CLI", "`predict` a valid WAV with a non-UTF-8 name",
         "called undecodable", "predicted, name escaped", f"{CLI}[non-utf8-predict]"),
     CliCase(cli.predict_argv(lambda w: f"{w.root}/{NON_UTF8}"), "ok",
             stdout_has=("caf\\xe9-\\xff.wav:",))),
    (Row("cli-non-utf8-undecodable", "CLI", "`predict` junk with a non-UTF-8 name",
         NOT_LISTED, "one-line error naming it", f"{CLI}[non-utf8-undecodable]"),
     CliCase(cli.predict_argv(lambda w: f"{w.root}/junk-{NON_UTF8}"), "one-line error",
             "cannot decode audio")),
    (Row("cli-truncated-wav", "CLI", "`predict` a WAV cut at 2/3", "accepted silently",
         "predicted with one warning line", f"{CLI}[truncated-wav]"),
     CliCase(cli.predict_argv(lambda w: f"{w.root}/trunc.wav"), "ok, one warning line",
             "truncated WAV")),
    (Row("cli-lr-nan", "CLI", "`train --lr nan`", "traceback and an empty run folder",
         "one-line error, no folder", f"{CLI}[lr-nan]"),
     CliCase(cli.train_argv("--lr", "nan", out="run-nan"), "one-line error",
             "lr must be a finite", absent=("run-nan",))),
    (Row("cli-epochs-1e9", "CLI", "`train --epochs 1000000000`",
         NOT_LISTED + " (the app's field took 10^9)", "one-line error, no folder",
         f"{CLI}[epochs-1e9]"),
     CliCase(cli.train_argv("--epochs", str(10**9), out="run-epochs"), "one-line error",
             "max_epochs must be in [1, 2000]", absent=("run-epochs",))),
    (Row("cli-device-cuda", "CLI", "`train --device cuda` on a CPU machine", NOT_LISTED,
         "one-line error, no folder", "tests/test_train.py::test_select_device"),
     CliCase(cli.train_argv("--epochs", "1", "--device", "cuda", "--quiet", out="run-cuda"),
             "one-line error", "cuda", absent=("run-cuda",), cpu_only=True)),
    (Row("cli-non-utf8-features", "CLI", "`features` on a folder with a non-UTF-8 name",
         "UnicodeEncodeError traceback", "name reported, the rest cached",
         f"{CLI}[non-utf8-features]"),
     CliCase(lambda w: ["features", str(w.ds), "--quiet", "--workers", "1"], "ok",
             stdout_has=("names are not valid UTF-8", "caf\\xe9-\\xff.wav"))),
    (Row("cli-non-utf8-train", "CLI", "`train` on a folder with a non-UTF-8 name",
         "UnicodeEncodeError traceback", "trains", f"{CLI}[non-utf8-train]"),
     CliCase(cli.train_argv("--epochs", "1", "--quiet", out="run-ok"), "ok",
             stdout_has=("song accuracy",))),
)

GROUPS: tuple[Group, ...] = (
    Group("serve", "cli", (
        Row("app-listen", "app", "`make run`: listening address",
            "`*:8501`, every interface, no login", "127.0.0.1 only",
            "tests/test_serve.py::test_make_run_listens_on_loopback_only"),
        Row("app-open-no-password", "app", "serve on 0.0.0.0 without TFCNN_APP_PASSWORD",
            "served to the network, no login", "one-line error, nothing listens",
            "tests/test_serve.py::test_open_address_without_password_refuses_to_start"),
    ), cli.probe_serve),
    Group("password", "app", (
        Row("app-password-gate", "app", "TFCNN_APP_PASSWORD set: open a page",
            "no login existed", "sign-in form before any content",
            "tests/test_serve.py::test_password_gate_before_any_page_content"),
    ), app.password),
    Group("predict-paths", "app", tuple(
        Row(f"app-predict-{key}", "app", _P + probe, before, want,
            f"{T_BAD}::test_app_predict_refuses_paths_outside_the_roots_alike" if key !=
            "inside" else f"{T_BAD}::test_app_predict_reads_a_file_inside_the_roots")
        for key, probe, before, want in [
            ("shadow", "`/etc/shadow`", "an error unlike a missing file's: reveals it exists",
             REFUSE),
            ("missing", "a missing path", "\"no such file\": tells it apart", REFUSE),
            ("dev-zero", "`/dev/zero`", "read until memory ran out", REFUSE),
            ("fifo", "a named pipe", "page hung", REFUSE),
            ("root", "`/`", "any path was read (not probed separately)", REFUSE),
            ("symlink-out", "a symlink inside the roots to a WAV outside",
             "any path was read (not probed separately)", REFUSE),
            ("tmp-wav", "a WAV in /tmp (outside the roots)", "predicted and played back",
             REFUSE),
            ("inside", "a WAV inside the allowed roots (control)", "predicted",
             "predicted"),
        ]), app.predict_paths),
    Group("folder-paths", "app", tuple(
        Row(f"app-folder-{key}", "app", _F + probe, before, want,
            f"{T_BAD}::test_app_data_folder_outside_the_roots_is_refused")
        for key, probe, before, want in [
            ("etc", "`/etc`", "any folder: listed, played, cached into, trained on", REFUSE),
            ("missing", "a missing folder", "any folder was used (not probed separately)", REFUSE),
            ("dev-zero", "`/dev/zero`", "any folder was used (not probed separately)", REFUSE),
            ("fifo", "a named pipe", "any folder was used (not probed separately)", REFUSE),
            ("root", "`/`", "walked the whole disk for 39 s", REFUSE + " in < 10 s"),
            ("symlink-out", "a symlink inside the roots to a folder outside",
             "any folder was used (not probed separately)", REFUSE),
            ("tmp", "a data set in /tmp (outside the roots)",
             "listed, played, `.tfcnn-cache/` written there", REFUSE + ", nothing written"),
        ]), app.folder_paths),
    Group("upload-bomb", "app", (
        Row("app-upload-bomb", "app", "Predict upload: FLAC of 3 h (about 3 MB)",
            "server grew to 2.7 GB (1.5 MB FLAC of 3 h)", "refused from the header",
            f"{T_BAD}::test_app_predict_refuses_an_over_long_file_by_its_header"),
    ), app.upload_bomb),
    Group("train", "app", (
        Row("app-two-launches", "app", "Train: Launch clicked twice (cap 1)",
            "10 training processes from two clicks", "1 training, 1 queued",
            f"{T_APP}::test_train_runs_one_at_a_time_and_queues_the_rest"),
        Row("app-epochs", "app", "Train: Max epochs 10^9", "accepted",
            "input bounded at 2000",
            f"{T_BAD}::test_app_train_bounds_epochs_and_offers_only_present_devices"),
        Row("app-device", "app", "Train: device cuda on a CPU machine",
            "offered; the run failed later", "only present devices offered",
            f"{T_BAD}::test_app_train_bounds_epochs_and_offers_only_present_devices"),
    ), app.train),
    Group("cancel-stale", "app", (
        Row("app-cancel-stale", "app", "Cancel: status.json names an unrelated live PID",
            "signalled whatever process had that PID", "spared, reported as stale",
            f"{T_BAD}::test_app_cancel_of_a_stale_pid_spares_the_process"),
    ), app.cancel_stale),
    Group("sessions", "app", (
        Row("app-shared-settings", "app", "one session picks a bad folder; a second opens",
            "choice saved in runs/.app-settings.json: every new session broken",
            "per session, nothing saved",
            f"{T_APP}::test_data_choice_is_per_session_and_outside_folders_are_refused"),
        Row("app-second-edit", "app", "sidebar Folder: path A, Enter; path B, Enter",
            "reverted to A", "B kept", f"{T_APP}::test_folder_field_keeps_every_edit"),
    ), app.sessions),
    Group("non-utf8-app", "app", (
        Row("app-non-utf8-config", "app", "a run folder with a non-UTF-8 config.json",
            "Train/Results/Predict raised for everyone", "pages render; the run is named",
            f"{T_BAD}::test_app_pages_survive_a_run_with_a_non_utf8_config"),
        Row("app-non-utf8-name", "app", "a data folder holding a non-UTF-8 file name",
            "pages raised", "the name reported, the rest loads",
            f"{T_BAD}::test_app_data_folder_with_a_non_utf8_name_reports_it"),
    ), app.non_utf8),
    *(Group(row.id, "cli", (row,), partial(cli.probe_cli_case, case, row.id))
      for row, case in CLI_CASES),
    Group("features-sigterm", "cli", (
        Row("cli-features-sigterm", "CLI", "`features --workers 2`, then SIGTERM",
            "orphan worker processes", "no orphans, one line",
            f"{T_BAD}::test_features_sigterm_leaves_no_worker"),
    ), cli.probe_features_sigterm),
    Group("cache", "cli", (
        Row("cache-corruption", "runs", "bytes flipped in two `.tfcnn-cache` entries",
            "used silently: a fold's norm_std 9.2e19, exit 0", "named and recomputed",
            "tests/test_cache.py::test_flipped_bytes_in_an_entry_are_named_and_recomputed"),
    ), cli.probe_cache_corruption),
    Group("checkpoints", "cli", (
        Row("ckpt-n-filters", "runs", "checkpoint header n_filters = 10^8",
            "24 GB allocated before any check", "one-line error, < 1 GB",
            "tests/test_checkpoint.py::test_oversized_header_is_refused_before_anything_is_built"),
        Row("ckpt-hop-1", "runs", "checkpoint header hop_length = 1",
            "6 s prediction took 82 s", "one-line error",
            "tests/test_checkpoint.py::test_oversized_header_is_refused_before_anything_is_built"),
    ), cli.probe_checkpoint_headers),
    Group("resume", "cli", (
        Row("run-kill-resume", "runs", "kill -9 in fold-parallel training, then `--resume`",
            "every epoch lost (\"0/3 folds\" after 11 min)", "at most one epoch lost",
            f"{T_TRAIN}::test_kill_9_mid_fold_then_resume_continues_from_the_saved_epoch"),
    ), cli.probe_resume),
    Group("full-disk", "cli", (
        Row("run-full-disk", "runs", "`train` while the disk fills (after 2 epochs)",
            "traceback; status left running; progress.jsonl torn, run unreadable",
            "one-line error; status failed; no torn line",
            f"{T_TRAIN}::test_full_disk_fails_with_one_line_and_resumes_after_space_is_freed"),
        Row("run-full-disk-start", "runs", "`train` started on a full disk (16 KB free)",
            "not listed separately", "one-line error; no run folder left behind",
            f"{T_TRAIN}::test_a_run_started_on_a_full_disk_leaves_nothing_behind"),
    ), cli.probe_full_disk, needs_root=True),
    Group("bomb-cli", "cli", (
        Row("cli-bomb-3h", "CLI", "`predict` a FLAC of 3 h (about 3 MB)",
            "5.5 GB peak (0.3 MB FLAC of 3 h)",
            f"predicted, peak < {cli.BOMB_PEAK_MB} MB",
            "tests/test_audio.py::test_blockwise_log_mel_equals_one_shot_on_a_real_file"),
    ), cli.probe_long_flac_cli, heavy=True),
)


def run_app_group(group: Group, w: Workdir) -> dict[str, Outcome]:
    """Run an app group in a child process; a hang or crash becomes every row's outcome."""
    w.model  # the pages list it
    runs = w.runs / group.name  # each group its own runs folder: no launch outlives it
    runs.mkdir(parents=True)
    proc = run_process([sys.executable, "-m", "scripts.safety_probes", "--child", group.name,
                        "--workdir", str(w.path)], cwd=REPO, env=w.app_env(runs),
                       timeout_s=APP_TIMEOUT_S)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        found = {k: Outcome(**v) for k, v in json.loads(last).items()}
    except (json.JSONDecodeError, TypeError):
        now = "hang (timeout)" if proc.returncode is None else "probe crashed"
        tail = proc.err_lines[-1][:160] if proc.err_lines else ""
        found = {row.id: Outcome(now, tail) for row in group.rows}
    for outcome in found.values():  # the child's peak is every row's bound
        outcome.peak_rss_mb = round(proc.peak_rss_mb)
    return found


def run_groups(w: Workdir, *, heavy: bool, only: set[str] | None = None,
               log: Callable[[str], None] = print) -> dict[str, Outcome]:
    """Run every selected group; return ``{row id: Outcome}`` (rows not run are absent)."""
    results = {}
    for group in GROUPS:
        ids = {row.id for row in group.rows}
        if only is not None and not ids & only:
            continue
        if group.heavy and not heavy and not (only and ids & only):
            continue
        if group.needs_root and os.geteuid() != 0:
            found = {row.id: Outcome("not run", "needs root to mount a small tmpfs")
                     for row in group.rows}
        elif group.kind == "app":
            found = run_app_group(group, w)
        else:
            try:
                found = group.run(w)
            except Exception as exc:  # noqa: BLE001 - a broken probe is a row, not the end
                found = {row.id: Outcome("probe crashed", f"{type(exc).__name__}: {exc}"[:160])
                         for row in group.rows}
        for row_id, outcome in found.items():
            if only is None or row_id in only:
                results[row_id] = outcome
                log(f"{row_id}: {outcome.now}{'' if outcome.met else '  <-- NOT MET'}")
    return results


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


@dataclass(frozen=True)
class Summary:
    """Counts over the rows run: how many do what they must, and the CLI runs' classes as the
    original pass counted them (one-line errors, tracebacks, hangs)."""

    n_rows: int
    n_met: int
    not_met: tuple[str, ...]
    cli_classes: dict[str, int]


def summarise(results: dict[str, Outcome]) -> Summary:
    cli_runs = [o for o in results.values() if o.how.startswith("CLI")]
    classes = Counter(next((c for c in CLI_CLASSES if o.now.startswith(c)), "other")
                      for o in cli_runs)
    return Summary(len(results), sum(o.met for o in results.values()),
                   tuple(k for k, o in results.items() if not o.met),
                   {c: classes[c] for c in (*CLI_CLASSES, "other") if classes[c]})


def markdown(results: dict[str, Outcome], *, machine: str, command: str) -> str:
    """The table: probe · before · must · now · met · seconds and memory · how checked ·
    covering test, under a summary."""
    rows = [(row, results[row.id]) for g in GROUPS for row in g.rows if row.id in results]
    summary = summarise(results)
    lines = [
        "# Safety probes: before and now",
        "",
        f"Regenerate with `{command}` (the 3 h decode needs `--heavy`; the full-disk row "
        "needs root to mount a tmpfs). Each row is run for real in a temporary folder: CLI rows "
        "as subprocesses, app rows with Streamlit's AppTest in a child process; peak memory "
        "is the child's from `wait4`. *Before* is what the reliability and security pass "
        "observed before the fixes; *now* is this run's outcome on "
        f"{machine}.",
        "",
        f"**{summary.n_met} of {summary.n_rows} rows do what they must now.** Not yet: "
        f"{', '.join(f'`{k}`' for k in summary.not_met) or 'none'}. CLI runs by outcome: "
        + ", ".join(f"{n} {c}" for c, n in summary.cli_classes.items()) + ".",
        "",
        "| probe | before | must | now | met | s · peak MB | how checked | covering test |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row, o in rows:
        numbers = " · ".join(x for x in (
            "" if o.seconds is None else f"{o.seconds:g} s",
            "" if o.peak_rss_mb is None else f"{o.peak_rss_mb:g} MB") if x)
        now = f"**{o.now}**" + (f": {o.detail}" if o.detail else "")
        lines.append(f"| {_cell(row.probe)} | {_cell(row.before)} | {_cell(row.want)} | "
                     f"{_cell(now)} | {'yes' if o.met else '**no**'} | {numbers} | "
                     f"{_cell(o.how)} | `{_cell(row.covered_by)}` |")
    lines += ["", "App rows share one child process per group: their peak memory is that "
              "child's (Streamlit, torch and the page), an upper bound for each row.", ""]
    return "\n".join(lines)


def machine_summary() -> str:
    """The machine in a few words: CPUs, torch, whether CUDA is present, the date."""
    from tfcnn.provenance import machine_info

    info = machine_info()
    return (f"{info['cpu_count']} CPU cores, torch {info['torch']}, CUDA "
            f"{'present' if cuda_present() else 'absent'}, {time.strftime('%Y-%m-%d')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.safety_probes",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--heavy", action="store_true", help="also the 3 h decode on the CLI")
    parser.add_argument("--only", default=None, help="comma-separated row ids")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "safety-probes.md")
    parser.add_argument("--no-write", action="store_true", help="print, write no files")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # an app group, in its own process: print its outcomes as JSON
        group = next(g for g in GROUPS if g.name == args.child)
        found = group.run(Workdir(args.workdir, runs=Path(os.environ["TFCNN_RUNS_DIR"])))
        print(json.dumps({k: asdict(v) for k, v in found.items()}))
        return 0
    known = {row.id for g in GROUPS for row in g.rows}
    only = None if args.only is None else set(args.only.split(","))
    if only is not None and only - known:
        print(f"error: unknown row ids {sorted(only - known)}; known: {sorted(known)}",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tfcnn-probes-") as tmp:
        w = Workdir(Path(tmp)).build()
        results = run_groups(w, heavy=args.heavy, only=only)
    if not args.no_write:
        command = "python -m scripts.safety_probes" + (" --heavy" if args.heavy else "")
        machine = machine_summary()
        write_text_atomic(args.out, markdown(results, machine=machine, command=command))
        write_json_atomic(args.out.with_suffix(".json"), {
            "command": command, "machine": machine,
            "rows": [{**asdict(row), **asdict(results[row.id])} for g in GROUPS
                     for row in g.rows if row.id in results]})
        print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0 if all(o.met for o in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
