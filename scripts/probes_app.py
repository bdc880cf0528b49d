"""The app probes: Streamlit's AppTest on the real pages, run by
:mod:`scripts.safety_probes` in a child process whose environment points the app at the
probes' temporary folder (:meth:`scripts.probe_kit.Workdir.app_env`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from scripts.probe_kit import REPO, Outcome, Workdir, cuda_present
from tfcnn import runs
from tfcnn.paths import REFUSED

#: The class of a path refused with the app's one message (:data:`tfcnn.paths.REFUSED`).
REFUSED_CLASS = "refused (the one message)"


def _page(name: str):
    """The app with page ``name`` selected, as after a click on its link (not yet run)."""
    # streamlit loads in the app's child process only, not in the runner
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    if name != "app.py":
        at.run()  # the entry point registers the pages (st.navigation) ...
        at.switch_page(name)  # ... so the next run() shows this one through it
    return at


def _page_outcome(at) -> tuple[str, str]:
    """(class, detail) of a page after a run: an exception, the refusal, an error, or ok."""
    if at.exception:
        return "exception on the page", str(at.exception[0].value)[:160]
    errors = [e.value for e in at.error]
    if errors == [REFUSED]:
        return REFUSED_CLASS, ""
    if errors:
        return "error shown", errors[0][:160]
    return "ok", ""


def predict_paths(w: Workdir) -> dict[str, Outcome]:
    """Every kind of server path typed into Predict's file field, then a good file."""
    at = _page("pages/4_Predict.py").run()
    at.sidebar.radio[1].set_value("A file on this machine").run()
    how = "AppTest: Predict, 'A file on this machine'"
    out = {}
    for row, path in [("app-predict-shadow", "/etc/shadow"),
                      ("app-predict-missing", str(w.root / "missing.wav")),
                      ("app-predict-dev-zero", "/dev/zero"),
                      ("app-predict-fifo", str(w.root / "pipe.wav")),
                      ("app-predict-root", "/"),
                      ("app-predict-symlink-out", str(w.root / "escape.wav")),
                      ("app-predict-tmp-wav", str(w.outside_wav)),
                      ("app-predict-inside", str(w.root / "full.wav"))]:
        start = time.monotonic()
        at.text_input[0].set_value(path).run()
        now, detail = _page_outcome(at)
        played = bool(at.get("audio")) or bool(at.metric)
        if row == "app-predict-inside":
            met = now == "ok" and bool(at.metric)
            detail = f"predicted {at.metric[0].value}" if at.metric else detail
        else:
            met = [e.value for e in at.error] == [REFUSED] and not played
            if played:
                now += ", predicted and played"
        out[row] = Outcome(now, detail, met, round(time.monotonic() - start, 1), how=how)
    return out


def folder_paths(w: Workdir) -> dict[str, Outcome]:
    """Every kind of server path typed into the sidebar's Folder field (Data page)."""
    at = _page("pages/1_Data.py").run()
    at.sidebar.radio[0].set_value("folder").run()
    how = "AppTest: Data page, sidebar Folder field"
    out = {}
    for row, path in [("app-folder-etc", "/etc"),
                      ("app-folder-missing", str(w.root / "nowhere")),
                      ("app-folder-dev-zero", "/dev/zero"),
                      ("app-folder-fifo", str(w.root / "pipe.wav")),
                      ("app-folder-root", "/"),
                      ("app-folder-symlink-out", str(w.root / "escape-dir")),
                      ("app-folder-tmp", str(w.outside_dir))]:
        start = time.monotonic()
        at.sidebar.text_input[0].set_value(path).run()
        seconds = time.monotonic() - start
        now, detail = _page_outcome(at)
        cached = (w.outside_dir / ".tfcnn-cache").exists()
        listed = bool(at.get("audio"))
        if listed:
            now += ", tracks listed and played"
        if cached:
            now += ", wrote .tfcnn-cache outside"
        out[row] = Outcome(now, detail, [e.value for e in at.error] == [REFUSED]
                           and not listed and not cached and seconds < 10,
                           round(seconds, 1), how=how)
    return out


def upload_bomb(w: Workdir) -> dict[str, Outcome]:
    """A 3 h FLAC uploaded on Predict: refused from its header, before decoding."""
    path = w.long_flac()
    at = _page("pages/4_Predict.py").run()
    start = time.monotonic()
    at.file_uploader[0].set_value(("long-3h.flac", path.read_bytes(), "audio/flac")).run()
    errors = [e.value for e in at.error]
    now = "exception on the page" if at.exception else (
        "refused from the header" if any("the limit is" in e for e in errors) else
        ("error shown" if errors else "decoded"))
    return {"app-upload-bomb": Outcome(
        now, (errors[0] if errors else "")[:160], now == "refused from the header",
        round(time.monotonic() - start, 1),
        how=f"AppTest: Predict upload of a {path.stat().st_size / 2**20:.1f} MB FLAC of 3 h")}


def password(w: Workdir) -> dict[str, Outcome]:
    """With ``TFCNN_APP_PASSWORD`` set: a sign-in form first, a wrong password refused."""
    os.environ["TFCNN_APP_PASSWORD"] = "correct horse"
    start = time.monotonic()
    at = _page("pages/4_Predict.py").run()
    titles = [t.value for t in at.title]
    content = bool(at.sidebar.radio or at.dataframe or at.metric)
    at.text_input[0].input("wrong")
    at.button[0].click().run()
    wrong = [e.value for e in at.error] == ["Wrong password."] and not at.sidebar.radio
    at.text_input[0].input("correct horse")
    at.button[0].click().run()
    opened = bool(at.sidebar.radio) and not at.exception
    met = titles == ["Sign in"] and not content and wrong and opened
    return {"app-password-gate": Outcome(
        "sign-in before any content" if met else f"titles {titles}",
        "wrong password refused; the right one opens the page" if met else "", met,
        round(time.monotonic() - start, 1), how="AppTest: Predict with TFCNN_APP_PASSWORD set")}


def _train_page(w: Workdir):
    """The Train page, run once, with the small data set chosen in this session."""
    at = _page("pages/2_Train.py")
    at.session_state["tfcnn_data"] = {"source": "folder", "path": str(w.ds)}
    return at.run()


def train(w: Workdir) -> dict[str, Outcome]:
    """Two launches with the default cap, the epochs bound, the devices offered."""
    out = {}
    how = "AppTest: Train page"
    at = _train_page(w)
    epochs = next(n for n in at.sidebar.number_input if n.label.startswith("Max epochs"))
    bound = epochs.proto.max if epochs.proto.has_max else None
    out["app-epochs"] = Outcome(f"bounded at {bound:g}" if bound else "unbounded",
                                "Max epochs input", bound == 2000, how=how)
    device = next(s for s in at.sidebar.selectbox if s.label == "Device")
    offered = list(device.options)
    out["app-device"] = Outcome(
        f"offers {', '.join(offered)}", f"torch sees CUDA here: {cuda_present()}",
        ("cuda" in offered) == cuda_present(), how=how)
    start = time.monotonic()
    for _ in range(2):  # two clicks on Launch (the default architecture, time)
        inputs = {n.label: n for n in at.sidebar.number_input}
        inputs["Folds"].set_value(2)
        inputs["Max epochs (0 = preset's)"].set_value(200)
        next(b for b in at.sidebar.button if b.label == "Launch").click().run()
    records = [json.loads(p.read_text()) for p in w.runs.glob(f"{runs.LAUNCHES_DIR}/*/"
                                                               f"{runs.LAUNCH_FILE}")]
    started = [r for r in records if r.get("state") == "started"]
    queued = [r for r in records if r.get("state") == "queued"]
    shown = " ".join(m.value for m in at.markdown if "folds" in m.value)
    for r in started:  # stop the trainer this probe started
        try:
            os.killpg(r["pid"], signal.SIGKILL)
        except (ProcessLookupError, KeyError):
            pass
    out["app-two-launches"] = Outcome(
        f"{len(started)} training, {len(queued)} queued", f"page shows "
        f"{shown.count('`queued`')} queued", len(started) == 1 and len(queued) == 1
        and "`queued`" in shown, round(time.monotonic() - start, 1),
        how="AppTest: Train page, Launch clicked twice; launch records")
    return out


def cancel_stale(w: Workdir) -> dict[str, Outcome]:
    """Cancel of a run whose ``status.json`` names an unrelated live process."""
    sleeper = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        run = w.runs / "20250101-000000-time-quick"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"arch": "time", "n_folds": 2}))
        (run / "status.json").write_text(json.dumps({"state": "running", "pid": sleeper.pid}))
        at = _train_page(w)
        cancel = [b for b in at.button if b.key == f"cancel-{run.name}"]
        if not cancel:
            return {"app-cancel-stale": Outcome("no Cancel button", how="AppTest")}
        start = time.monotonic()
        cancel[0].click().run()
        time.sleep(0.5)
        alive = sleeper.poll() is None
        warned = [x.value for x in at.warning if "stale PID" in x.value]
        return {"app-cancel-stale": Outcome(
            "spared, reported as stale" if alive and warned else
            ("killed the unrelated process" if not alive else "spared, not reported"),
            (warned[0] if warned else "")[:160], alive and bool(warned),
            round(time.monotonic() - start, 1),
            how="AppTest: Train page, Cancel of a run whose status.json names `sleep`")}
    finally:
        sleeper.kill()
        sleeper.wait()


def sessions(w: Workdir) -> dict[str, Outcome]:
    """A bad folder in one session, a fresh second session; two edits of the Folder field."""
    out = {}
    how = "AppTest: two sessions of the home page"
    one = _page("app.py").run()
    one.sidebar.radio[0].set_value("folder").run()
    one.sidebar.text_input[0].set_value("/etc").run()
    other = _page("app.py").run()
    fresh = other.sidebar.radio[0].value == "synth" and not other.error
    saved = (w.runs / ".app-settings.json").exists()
    out["app-shared-settings"] = Outcome(
        "per session" if fresh and not saved else "shared",
        f"a 2nd session starts at source {other.sidebar.radio[0].value!r}; "
        f"runs/.app-settings.json {'written' if saved else 'absent'}",
        fresh and not saved and [e.value for e in one.error] == [REFUSED], how=how)
    at = _page("app.py").run()
    at.sidebar.radio[0].set_value("folder").run()
    first, second = str(w.root / "first"), str(w.ds)
    at.sidebar.text_input[0].set_value(first).run()
    at.sidebar.text_input[0].set_value(second).run()
    value = at.sidebar.text_input[0].value
    out["app-second-edit"] = Outcome(
        "kept" if value == second else "reverted", f"field holds {Path(value).name!r} after "
        "edits 'first' then 'ds'", value == second and not at.exception,
        how="AppTest: sidebar Folder edited twice")
    return out


def non_utf8(w: Workdir) -> dict[str, Outcome]:
    """A run folder with a non-UTF-8 config.json; a data folder with a non-UTF-8 name."""
    out = {}
    bad = w.runs / "20250101-000000-time-quick"
    bad.mkdir(exist_ok=True)
    (bad / "config.json").write_bytes(b'{"arch": "time\xff\xfe"}')
    problems, named = [], False
    for name in ("pages/2_Train.py", "pages/3_Results.py", "pages/4_Predict.py"):
        at = _page(name)
        at.session_state["tfcnn_data"] = {"source": "folder", "path": str(w.ds)}
        at.run()
        if at.exception:
            problems.append(f"{name}: {str(at.exception[0].value)[:80]}")
        named |= any(bad.name in e.value for e in at.error)
    out["app-non-utf8-config"] = Outcome(
        "pages render, bad run named" if not problems and named else
        ("exception" if problems else "pages render, bad run not named"),
        "; ".join(problems)[:160] or "Train, Results, Predict", not problems and named,
        how="AppTest: Train, Results, Predict with a non-UTF-8 config.json")
    at = _page("pages/1_Data.py").run()
    at.sidebar.radio[0].set_value("folder").run()
    at.sidebar.text_input[0].set_value(str(w.ds)).run()
    warned = [x.value for x in at.warning if "not valid UTF-8" in x.value]
    caption = at.caption[0].value if at.caption else ""
    met = not at.exception and not at.error and bool(warned) and "6 tracks" in caption
    out["app-non-utf8-name"] = Outcome(
        "reported, the rest loads" if met else ("exception" if at.exception else "other"),
        (warned[0] if warned else caption)[:160], met,
        how="AppTest: Data page on a folder holding a non-UTF-8 file name")
    return out
