"""End to end in a real browser: `streamlit run app.py` + headless Chromium via Playwright.

Opens every page, uploads a WAV on Predict through the real file uploader and checks that the
predicted dance appears and no exception box is shown. Screenshots go to test-artifacts/
and, when ``TFCNN_SCREENSHOTS`` names a folder (e.g. docs/screenshots), there too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tfcnn import locations
from tfcnn.config import CLASSES, FRONT_END, PAPER_TABLE1
from tfcnn.paths import ENV_ALLOWED_ROOTS, REFUSED
from tfcnn.result_sets import TableFile
from tfcnn.ui.serve import streamlit_command

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
#: A fake microphone (a beep) that needs no permission prompt, for the recording test.
FAKE_MICROPHONE_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
SERVER_START_S = 90
PAGE_TIMEOUT_MS = 120_000  # the Filters page runs its tempo probes on first render
#: The repository's own data set and shipped models, used read-only for README screenshots.
REPO_DATA = REPO / "data" / "synth-ballroom"
REPO_CHECKPOINT = REPO / "checkpoints" / "synth-timefreq.safetensors"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_checkpoints(folder: Path) -> Path:
    """An untrained ``time`` model and a Table 1 file, shaped like ``checkpoints/``."""
    from tfcnn.checkpoint import save_checkpoint
    from tfcnn.models import build_model

    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder / "synth-time.safetensors", build_model("time", len(CLASSES)),
                    classes=CLASSES, norm_mean=0.0, norm_std=1.0, front_end=FRONT_END)
    # made-up accuracies (not the paper's, so the two traces of the plot stay distinct)
    table = {"runs": {arch: {"arch": arch, "n_params": row.params, "mean": row.mean - 8,
                             "std": row.std, "per_fold": [row.mean - 8 - row.std,
                                                          row.mean - 8, row.mean - 8 + row.std],
                             "dataset": {"name": "SynthBallroom"}, "classes": list(CLASSES),
                             "confusion": (np.eye(len(CLASSES), dtype=int) * 3 + 1).tolist()}
                      for arch, row in PAPER_TABLE1.items()}}
    (folder / "table1-synth.json").write_text(json.dumps(table))
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `streamlit run app.py` on a free local port, stopped at the end."""
    tmp = tmp_path_factory.mktemp("browser")
    screenshots = os.environ.get("TFCNN_SCREENSHOTS")
    if screenshots and (REPO_DATA / "metadata.csv").is_file() and REPO_CHECKPOINT.is_file():
        data, checkpoints = REPO_DATA, REPO_CHECKPOINT.parent  # read-only: nicer screenshots
    else:
        from tfcnn.synth import generate

        data = generate(tmp / "synth-ballroom", per_class=2, seconds=6.0, seed=0, workers=2,
                        progress=False)
        checkpoints = make_checkpoints(tmp / "checkpoints")
    runs = tmp / "runs"
    if screenshots:  # a finished run, so Train and Results have curves to show
        subprocess.run([sys.executable, "-m", "tfcnn", "train", str(data), "--arch", "time",
                        "--folds", "2", "--epochs", "3", "--quiet",
                        "--out", str(runs / "demo-time-quick")],
                       cwd=REPO, check=True, timeout=300, capture_output=True)
    port = free_port()
    allowed = tmp / "allowed"
    allowed.mkdir(exist_ok=True)
    env = dict(os.environ, **{locations.ENV_DATA_DIR: str(data), locations.ENV_RUNS_DIR: str(runs),
                              locations.ENV_CHECKPOINTS_DIR: str(checkpoints),
                              ENV_ALLOWED_ROOTS: str(allowed)})
    env.pop("TFCNN_APP_PASSWORD", None)
    log = open(tmp / "streamlit.log", "wb")
    # Started as `make run` starts it (tfcnn.ui.serve's command: Streamlit after the pages'
    # heavy imports), on a free port of this machine only.
    proc = subprocess.Popen(streamlit_command("127.0.0.1", port), cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"streamlit exited: {(tmp / 'streamlit.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"streamlit did not answer within {SERVER_START_S} s")
            time.sleep(0.5)
        yield {"url": url, "tmp": tmp, "data": data, "allowed": allowed,
               "checkpoints": checkpoints}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def browser_page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS + FAKE_MICROPHONE_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    # Streamlit scrolls inside its main block, so grow the window to the content instead.
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')"
                           ".scrollHeight")
    page.set_viewport_size({"width": size["width"],
                            "height": max(size["height"], min(int(height), 4000))})
    page.wait_for_timeout(800)  # plotly re-lays out after the resize
    page.screenshot(path=str(target), full_page=True)
    page.set_viewport_size(size)
    extra = os.environ.get("TFCNN_SCREENSHOTS")
    if extra:
        folder = Path(extra) if Path(extra).is_absolute() else REPO / extra
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, folder / f"{name}.png")


#: Seconds from navigation to each page's complete first render (last element shown, script
#: run over, every plotly chart drawn), in the order the test visits them after the server
#: is up; written to test-artifacts/first-render.json (the numbers in the first-hour report).
FIRST_RENDER_S: dict[str, float] = {}


def rendered(page) -> None:
    """Wait until the script run is over and every plotly chart on the page has drawn."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                           timeout=PAGE_TIMEOUT_MS)
    charts = page.locator('[data-testid="stPlotlyChart"]').count()
    page.wait_for_function("n => document.querySelectorAll("
                           "'[data-testid=stPlotlyChart] .main-svg').length >= n", arg=charts,
                           timeout=PAGE_TIMEOUT_MS)


def settle(page) -> None:
    """Wait until the script run is over (no running indicator) and plots are drawn."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                           timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(1500)  # plotly and graphviz draw after the script run


def assert_no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()


@pytest.mark.parametrize("path, text, last, name", [
    ("", "The four architectures", "Pages", "home"),
    ("Data", "Tracks per class", "Listen", "data"),
    ("Train", "Max epochs", "Runs", "train"),
    ("Results", "Table 1: ours beside the paper", "Export", "results"),
    ("Filters", "Do the temporal filters learn tempo?", "Per filter", "filters"),
])
def test_pages_render_without_exception(server, browser_page, path, text, last, name):
    page = browser_page
    start = time.monotonic()
    page.goto(f"{server['url']}/{path}")
    page.get_by_text(text).first.wait_for()
    # the app's state is "notRunning" for a moment before the first run starts
    page.get_by_text(last).first.wait_for()
    rendered(page)
    FIRST_RENDER_S[name] = round(time.monotonic() - start, 2)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "first-render.json").write_text(json.dumps(FIRST_RENDER_S, indent=1))
    print(f"first render of {name}: {FIRST_RENDER_S[name]} s")
    settle(page)
    assert_no_exception(page)
    if name == "train":
        launch_beside_the_estimate(page)
    screenshot(page, name)


def launch_beside_the_estimate(page) -> None:
    """The Launch button in the page (not below the sidebar), on the estimate's row, in the
    first screen."""
    button = page.get_by_role("button", name="Launch", exact=True)
    # the tiny test data cannot fill the default 10 folds: the estimate says why instead
    estimate = page.get_by_text(re.compile(r"^(Estimated|No estimate): ")).first
    estimate.wait_for()
    main = page.locator('[data-testid="stMain"]')
    assert main.get_by_role("button", name="Launch", exact=True).count() == 1
    b, e = button.bounding_box(), estimate.bounding_box()
    assert b["x"] > e["x"] + e["width"] * 0.5 and b["y"] < e["y"] + e["height"], (b, e)
    assert b["y"] + b["height"] < page.viewport_size["height"], b


def download(page, label: str) -> tuple[str, Path]:
    """Click the download button ``label``: the file's suggested name and its local path."""
    with page.expect_download() as event:
        page.get_by_role("button", name=label).click()
    return event.value.suggested_filename, Path(event.value.path())


def test_results_downloads_are_csv_tables_of_numbers(server, browser_page):
    shipped = TableFile.read(server["checkpoints"] / locations.SHIPPED_TABLE).result_sets()
    page = browser_page
    page.goto(f"{server['url']}/Results")
    # no settle(): a click waits for its button, and the page's exceptions are checked above
    page.get_by_text("Export").first.wait_for()

    name, path = download(page, "Table 1 (CSV)")
    assert name.startswith("table1_SynthBallroom") and name.endswith(".csv")
    table = pd.read_csv(path)
    # each row says what it was trained under (the test table records its folds only)
    assert {"folds complete", "folds planned", "preset", "max epochs", "protocol"} <= set(
        table.columns)
    assert list(table[table["source"] == "shipped"]["folds complete"]) == [
        len(rs.accuracies) for rs in shipped]
    assert table["mean (%)"].dtype == np.float64 and table["std (%)"].dtype == np.float64
    rows = table[table["source"] == "shipped"]
    assert list(rows["mean (%)"]) == pytest.approx([rs.mean for rs in shipped])
    assert list(rows["std (%)"]) == pytest.approx([rs.std for rs in shipped])

    _, path = download(page, "Per-fold accuracies (CSV)")
    folds = pd.read_csv(path)
    folds = folds[folds["source"] == "shipped"]
    assert folds["accuracy (%)"].dtype == np.float64
    assert list(folds["accuracy (%)"]) == pytest.approx(
        [a for rs in shipped for a in rs.accuracies])

    detail = page.get_by_role("button", name=re.compile(r"Per-class recall of .* \(CSV\)"))
    label = detail.inner_text()
    result = label.removeprefix("Per-class recall of ").removesuffix(" (CSV)")
    name, path = download(page, label)
    assert name.startswith("recall_") and name.endswith(".csv")
    recall = pd.read_csv(path)
    assert list(recall["class"]) == list(CLASSES) and set(recall["run"]) == {result}
    assert recall["recall (%)"].dtype == np.float64
    assert (recall["correct"] <= recall["songs"]).all()
    _, path = download(page, f"Confusion matrix of {result} (CSV)")
    confusion = pd.read_csv(path, index_col=0)
    assert list(confusion.index) == list(CLASSES)
    assert list(np.diag(confusion.to_numpy())) == list(recall["correct"])


def verdict_class(page) -> str:
    """The class of the page's verdict: confident ("Predicted dance: X (..%)") or unsure."""
    result = page.get_by_text("Predicted dance:").or_(page.get_by_text(re.compile("^Unsure: ")))
    result.first.wait_for()
    return result.first.inner_text().split(":", 1)[1].split()[0].strip("*")


def test_predict_upload_shows_the_predicted_dance(server, browser_page, tmp_path):
    t = np.arange(int(8.0 * 44100)) / 44100
    beat = (np.sin(2 * np.pi * 2.0 * t) > 0.95).astype(float)  # 120 BPM clicks
    y = 0.3 * np.sin(2 * np.pi * 330 * t) * (0.3 + beat)
    wav = tmp_path / "my song.wav"
    sf.write(wav, y.astype(np.float32), 44100, subtype="PCM_16")

    page = browser_page
    page.goto(f"{server['url']}/Predict")
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    uploader.wait_for(state="attached")
    # before any upload: the model, its whole name, and what it was trained on, above the
    # uploader
    note = page.get_by_text("This model:").first
    note.wait_for()
    assert "trained on" in note.inner_text()  # the test model's file does not say on what
    assert note.bounding_box()["y"] < page.locator(
        '[data-testid="stFileUploader"]').bounding_box()["y"]
    model = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').first
    shown = model.inner_text() + " ".join(
        model.locator("input").evaluate_all("els => els.map(e => e.value)"))
    assert re.search(r"\w+ · shipped synth-\w+ · .*calibrated", shown), model.inner_html()[:3000]
    clipped = model.evaluate(  # an element holding the name that is narrower than its text
        "b => [...b.querySelectorAll('div, span, input')].filter(e => "
        "(e.value || e.textContent || '').includes('shipped synth-') && "
        "e.children.length === 0 && e.scrollWidth > e.clientWidth + 1).length")
    assert clipped == 0
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Model", exact=True).count() == 0
    uploader.set_input_files(str(wav))
    predicted = verdict_class(page)
    assert predicted in CLASSES
    settle(page)
    assert_no_exception(page)
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    screenshot(page, "predict")

    # A corrupt upload: an error message, no exception, and the page keeps working.
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wave file" * 20)
    # the uploader keeps earlier files (several at once make a table): start afresh
    page.goto(f"{server['url']}/Predict")
    uploader.wait_for(state="attached")
    uploader.set_input_files(str(bad))
    error = page.get_by_text("cannot decode audio")
    error.wait_for()
    assert "broken.wav" in error.inner_text()
    assert_no_exception(page)


def test_predict_several_files_give_a_table_and_a_csv(server, browser_page, tmp_path):
    files = []
    for k, bpm in enumerate((96.0, 128.0, 170.0)):
        t = np.arange(int(6.0 * 44100)) / 44100
        y = 0.3 * np.sin(2 * np.pi * 330 * t) * (0.3 + (np.sin(np.pi * bpm / 60 * t) > 0.95))
        files.append(tmp_path / f"song {k}.wav")
        sf.write(files[-1], y.astype(np.float32), 44100, subtype="PCM_16")
    page = browser_page
    page.goto(f"{server['url']}/Predict")
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    uploader.wait_for(state="attached")
    uploader.set_input_files([str(f) for f in files])
    page.get_by_text("Download the table (CSV)").wait_for()
    settle(page)
    assert_no_exception(page)
    assert page.locator('[data-testid="stDataFrame"]').count() == 1
    assert verdict_class(page) in CLASSES  # details of the first file below the table
    with page.expect_download() as download:
        page.get_by_text("Download the table (CSV)").click()
    csv = Path(download.value.path()).read_text().splitlines()
    assert csv[0] == ("file,prediction,status,confidence (%),confidence cutoff (%),"
                      "beat strength,beat cutoff,patches,why,tempo (BPM),tempo classes,error")
    assert [row.split(",")[0] for row in csv[1:]] == [f.name for f in files]
    assert all(0 <= float(row.split(",")[3]) <= 100 for row in csv[1:])
    cutoffs = {float(row.split(",")[4]) for row in csv[1:]}  # the model's one cutoff
    assert len(cutoffs) == 1 and 0 < cutoffs.pop() <= 100
    screenshot(page, "predict-several")


def test_predict_microphone_records_and_classifies(server, browser_page):
    page = browser_page
    page.goto(f"{server['url']}/Predict")
    page.get_by_text("Record from the microphone").click()
    widget = page.locator('[data-testid="stAudioInput"]')
    widget.wait_for()
    settle(page)
    assert_no_exception(page)
    screenshot(page, "predict-microphone")
    # Chromium's fake microphone (a beep) records without a permission prompt.
    widget.locator('[data-testid="stAudioInputActionButton"]').click()  # record
    page.wait_for_timeout(3500)  # > one patch (1.81 s) of audio
    widget.get_by_label("Stop recording").click()
    assert verdict_class(page) in CLASSES
    settle(page)
    assert_no_exception(page)


def test_predict_refuses_server_paths_outside_the_allowed_roots(server, browser_page):
    """Typed into the real page: a system file, a WAV outside the roots and a missing file get
    the same refusal; a WAV inside the roots is predicted."""
    outside = server["tmp"] / "outside.wav"
    inside = server["allowed"] / "inside.wav"
    t = np.arange(int(4.0 * 44100)) / 44100
    for path in (outside, inside):
        sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100)

    page = browser_page
    page.goto(f"{server['url']}/Predict")
    page.get_by_text("A file on this machine").click()
    field = page.get_by_role("textbox", name="Path of an audio file")
    field.wait_for()
    for target in ("/etc/passwd", str(outside), str(server["allowed"] / "missing.wav")):
        field.fill(target)
        field.press("Enter")
        settle(page)
        errors = page.locator('[data-testid="stAlertContentError"]')
        assert errors.count() == 1 and errors.first.inner_text().strip() == REFUSED, target
        assert page.get_by_text("Predicted dance:").count() == 0
        assert page.get_by_text(re.compile("^Unsure: ")).count() == 0
        assert_no_exception(page)
    field.fill(str(inside))
    field.press("Enter")
    assert verdict_class(page) in CLASSES
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def test_a_refused_data_folder_says_why_and_every_page_keeps_the_data_set(server, browser_page):
    """Served to this machine only without a password: a folder outside the allowed ones is
    refused with the allowed folders and the command that adds one; the page, and the next
    one, say the active data set did not change."""
    page = browser_page
    page.goto(f"{server['url']}/Data")
    page.get_by_text("Listen").first.wait_for()
    page.get_by_text("Folder per class").click()
    field = page.get_by_role("textbox", name="Folder")
    field.wait_for()
    field.fill("/etc")
    field.press("Enter")
    error = page.locator('[data-testid="stAlertContentError"]').first
    error.wait_for()
    text = error.inner_text()
    assert "/etc is outside the folders this app may read" in text
    assert str(server["allowed"]) in text
    assert f"TFCNN_ALLOWED_ROOTS={server['allowed']}:/etc make run" in text
    page.get_by_text("The active data set did not change").first.wait_for()
    page.get_by_text("Listen").first.wait_for()  # the page goes on with the active data set
    assert_no_exception(page)
    page.get_by_role("link", name="Results (Table 1)").click()
    page.get_by_text("Table 1: ours beside the paper").first.wait_for()
    assert "/etc is outside" in page.locator('[data-testid="stAlertContentError"]').first.inner_text()
    page.get_by_text("The active data set did not change").first.wait_for()
    assert_no_exception(page)



def test_filters_stretches_an_uploaded_track_to_the_class_tempi(server, browser_page, tmp_path):
    t = np.arange(int(12.0 * 44100)) / 44100
    beat = (np.sin(2 * np.pi * 2.0 * t) > 0.95).astype(float)  # 120 BPM clicks
    wav = tmp_path / "my *song*.wav"                           # a name with Markdown in it
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 330 * t) * (0.3 + beat)).astype(np.float32),
             44100, subtype="PCM_16")
    page = browser_page
    page.goto(f"{server['url']}/Filters")
    rendered(page)
    page.get_by_text("Your own tracks: does the prediction follow").click()
    uploader = page.locator('[data-testid="stExpander"] [data-testid="stFileUploader"] '
                            'input[type="file"]')
    uploader.wait_for(state="attached")
    uploader.set_input_files(str(wav))
    line = page.get_by_text("Your tracks, time-stretched")
    line.wait_for(timeout=PAGE_TIMEOUT_MS)
    assert "stretches of 1 track" in line.inner_text()
    assert "1 track: too few for an interval over tracks" in line.inner_text()
    settle(page)
    assert_no_exception(page)
    # the track's name is data: shown as typed in the stretches table, never as emphasis
    assert page.locator('[data-testid="stMain"] em').filter(has_text="song").count() == 0
    uploader.set_input_files([])
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wave file" * 20)
    uploader.set_input_files(str(bad))
    error = page.get_by_text("cannot decode audio")
    error.wait_for(timeout=PAGE_TIMEOUT_MS)
    assert "broken.wav" in error.inner_text()
    assert_no_exception(page)
