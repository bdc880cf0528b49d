"""The Streamlit pages, run for real by streamlit.testing.v1.AppTest (no mocks).

Every test points the app at a tiny SynthBallroom, a fresh runs folder and a checkpoints
folder written here (``TFCNN_DATA_DIR``, ``TFCNN_RUNS_DIR``, ``TFCNN_CHECKPOINTS_DIR``), so
nothing of the repository's data, runs or shipped models is read or written.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import plotly.io
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

from tfcnn import locations, runs
from tfcnn.config import CLASSES, FRONT_END, PAPER_TABLE1, PRESETS
from tfcnn.paths import ENV_ALLOWED_ROOTS
from tfcnn.ui import run_control, sidebar

REPO = Path(__file__).resolve().parents[1]
SR = 44100
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory) -> Path:
    """SynthBallroom with 2 tracks of 6 s per dance (the embedded data set, in small)."""
    from tfcnn.synth import generate

    root = tmp_path_factory.mktemp("app") / "synth-ballroom"
    generate(root, per_class=2, seconds=6.0, seed=0, workers=2, progress=False)
    return root


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    """A checkpoints folder like the shipped one: an (untrained) time model + a Table 1."""
    from tfcnn.checkpoint import save_checkpoint
    from tfcnn.models import build_model

    folder = tmp_path_factory.mktemp("checkpoints")
    save_checkpoint(folder / "synth-time.safetensors", build_model("time", len(CLASSES)),
                    classes=CLASSES, norm_mean=0.0, norm_std=1.0, front_end=FRONT_END,
                    train_config=PRESETS["quick"], metrics={"accuracy": 50.0, "n_tracks": 2},
                    extra={"fold": 0, "protocol": "clean", "trained_on": "trained on tiny"})
    rng = np.random.default_rng(0)
    table = {"runs": {
        arch: {"arch": arch, "n_params": row.params, "classes": list(CLASSES),
               "mean": row.mean - 5, "std": row.std,
               "per_fold": list(row.mean - 5 + rng.normal(0, row.std, 10)),
               "confusion": (np.eye(8, dtype=int) * 5 + 1).tolist()}
        for arch, row in PAPER_TABLE1.items()
    }}
    # blackbox and timefreq record the same 10 folds (pairable); the others record none
    for arch in ("blackbox", "timefreq"):
        table["runs"][arch].update(assignment_fingerprint="f" * 16,
                                   fold_fingerprints=[f"{k:016x}" for k in range(10)],
                                   n_train_tracks=[384] * 10, n_test_tracks=[48] * 10)
    # the shipped runs' per-fold training curves (accuracies as fractions), for one row
    table["curves"] = {"time": [{"stage": "time", "fold": f, "epoch": e, "train_loss": 2.0 / e,
                                 "train_acc": 0.2 * e, "val_loss": 2.1 / e, "val_acc": 0.15 * e}
                                for f in (0, 1) for e in (1, 2, 3)]}
    (folder / "table1-synth.json").write_text(json.dumps(table))
    return folder


@pytest.fixture
def app_env(tiny_synth, checkpoints, tmp_path, monkeypatch) -> dict[str, Path]:
    runs = tmp_path / "runs"
    monkeypatch.setenv(locations.ENV_DATA_DIR, str(tiny_synth))
    monkeypatch.setenv(locations.ENV_RUNS_DIR, str(runs))
    monkeypatch.setenv(locations.ENV_CHECKPOINTS_DIR, str(checkpoints))
    monkeypatch.setenv(ENV_ALLOWED_ROOTS, str(tmp_path))  # the tests' own audio files
    monkeypatch.delenv("TFCNN_APP_PASSWORD", raising=False)
    monkeypatch.delenv("TFCNN_MAX_RUNS", raising=False)
    return {"data": tiny_synth, "runs": runs, "checkpoints": checkpoints, "tmp": tmp_path}


def page(name: str) -> AppTest:
    """The app with page ``name`` (relative to app.py) selected, as after a click on its link."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT_S)
    if name != "app.py":
        at.run()  # the entry point registers the pages (st.navigation) ...
        at.switch_page(name)  # ... so the next run() shows this one through it
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


# ----------------------------------------------------------------------------- pages


def test_home_shows_architectures_and_active_data_set(app_env):
    at = page("app.py").run()
    no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Data set"] == "SynthBallroom"
    assert metrics["Tracks"] == "16"
    assert metrics["Features cached"] == "0 / 16"
    arch = at.table[0].value  # a static table: long layer sequences wrap, never cut off
    assert dict(zip(arch.index, arch["#params"])) == {
        name: row.params for name, row in PAPER_TABLE1.items()}
    assert all(layers.endswith("softmax") for layers in arch["layers"])


def plain(markdown: str) -> str:
    """The text of a message the app escaped for Markdown (tfcnn.ui.sidebar shows paths as data)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def test_data_choice_is_per_session_and_a_refusal_says_why(app_env, tmp_path):
    """Served to this machine only without a password, the user is the operator: a refused
    folder says whether it exists, names the allowed folders and how to add one."""
    at = page("app.py").run()
    at.sidebar.radio[0].set_value("folder").run()
    at.sidebar.text_input[0].set_value("/etc").run()
    no_exception(at)
    (error,) = at.error
    roots = [str(r) for r in sidebar.allowed_roots()]
    assert plain(error.value) == (
        f"/etc is outside the folders this app may read ({', '.join(roots)}). To add it, "
        f"restart the app with: {ENV_ALLOWED_ROOTS}={tmp_path}{os.pathsep}/etc make run")
    # The page goes on with the data set that was active, and says so.
    assert "The active data set did not change: SynthBallroom" in plain(at.info[0].value)
    assert at.metric[0].value == "SynthBallroom"
    at.sidebar.text_input[0].set_value(str(tmp_path / "nowhere")).run()
    assert [plain(e.value) for e in at.error] == [
        f"{tmp_path / 'nowhere'} does not exist. The app may read folders inside: "
        f"{', '.join(roots)}"]
    # Another session (another user) starts from the operator's default, not from this one.
    other = page("app.py").run()
    assert other.sidebar.radio[0].value == "synth"
    assert not other.error and other.metric[0].value == "SynthBallroom"
    assert not (app_env["runs"] / ".app-settings.json").exists()


@pytest.mark.parametrize("name", ["app.py", "pages/1_Data.py", "pages/2_Train.py",
                                  "pages/3_Results.py", "pages/4_Predict.py",
                                  "pages/5_Filters.py"])
def test_every_page_says_a_refused_choice_left_the_data_set_unchanged(app_env, folder_dataset,
                                                                      monkeypatch, name):
    monkeypatch.setenv(ENV_ALLOWED_ROOTS, str(folder_dataset))
    at = page("app.py").run()
    at.sidebar.radio[0].set_value("folder").run()
    at.sidebar.text_input[0].set_value(str(folder_dataset)).run()  # accepted: now active
    assert not at.error
    at.sidebar.text_input[0].set_value("/etc").run()  # refused
    at.switch_page(name).run()
    no_exception(at)
    assert any("/etc is outside the folders" in plain(e.value) for e in at.error)
    assert any(f"The active data set did not change: {folder_dataset.name} at "
               f"{folder_dataset}" in plain(i.value) for i in at.info)


def test_folder_field_keeps_every_edit(app_env, folder_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_ALLOWED_ROOTS, os.pathsep.join([str(tmp_path),
                                                           str(folder_dataset)]))
    at = page("app.py").run()
    at.sidebar.radio[0].set_value("folder").run()
    at.sidebar.text_input[0].set_value(str(tmp_path / "first")).run()
    assert at.sidebar.text_input[0].value == str(tmp_path / "first")
    at.sidebar.text_input[0].set_value(str(folder_dataset)).run()  # the second edit sticks
    no_exception(at)
    assert at.sidebar.text_input[0].value == str(folder_dataset)
    assert not at.error and at.metric[0].value == folder_dataset.name
    # ... and survives a page switch within the session
    at.switch_page("pages/1_Data.py").run()
    no_exception(at)
    assert at.sidebar.text_input[0].value == str(folder_dataset)


def test_data_page_plots_and_builds_the_cache(app_env):
    at = page("pages/1_Data.py").run()
    no_exception(at)
    charts = at.get("plotly_chart")
    assert len(charts) >= 4  # counts, tempo, two log-mels
    assert len(at.get("audio")) == 2
    build = [b for b in at.button if b.label == "Build the feature cache"]
    assert build, "cache is empty, the build button must be offered"
    build[0].click().run()
    no_exception(at)
    assert not [b for b in at.button if b.label == "Build the feature cache"]
    assert "16 / 16" in at.get("progress")[0].proto.text


def test_results_page_shows_shipped_table_and_comparison(app_env):
    from tfcnn.compare import compare_scores
    from tfcnn.result_sets import load_result_set

    at = page("pages/3_Results.py").run()
    no_exception(at)
    table = at.dataframe[0].value
    assert list(table["architecture"]) == list(PAPER_TABLE1)
    assert list(table["paper #params"]) == [row.params for row in PAPER_TABLE1.values()]
    assert list(table["mean (%)"]) == pytest.approx([row.mean - 5 for row in
                                                     PAPER_TABLE1.values()])
    # what each row was trained under, next to its name (the test table records its folds,
    # nothing else)
    assert list(table.columns[:4]) == ["run", "architecture", "folds", "recipe"]
    assert list(table["folds"]) == ["10/10"] * 4
    assert set(table["recipe"]) == {"not recorded"}
    assert [b.label for b in at.get("download_button")] == [
        "Table 1 (CSV)", "Per-fold accuracies (CSV)", "All results (JSON)",
        "Confusion matrix of shipped blackbox (CSV)", "Per-class recall of shipped blackbox (CSV)"]

    # the paper's headline comparisons, each the numbers of `python -m tfcnn compare`
    path = app_env["checkpoints"] / "table1-synth.json"
    headline = at.dataframe[1].value
    first = headline.iloc[0]
    assert first["A vs B"] == "timefreq vs blackbox"
    tf_bb = compare_scores(load_result_set(f"{path}:timefreq"), load_result_set(f"{path}:blackbox"))
    assert first["A − B (points)"] == pytest.approx(round(tf_bb.mean_difference, 2))
    assert first["95 % interval"] == f"[{tf_bb.ci95[0]:+.2f}, {tf_bb.ci95[1]:+.2f}]"
    assert first["detectable (80 % power)"] == f"±{tf_bb.mdd:.1f}"
    assert first["verdict"] in {"inconclusive", "timefreq better", "blackbox better",
                                "equivalent within ±2 points"}

    # A = shipped blackbox, B = shipped timefreq: same folds, so paired; the numbers are
    # those of `python -m tfcnn compare TABLE:blackbox TABLE:timefreq --margin 3`
    assert [s.value for s in at.selectbox[:2]] == ["shipped blackbox", "shipped timefreq"]
    at.number_input[0].set_value(3.0).run()
    no_exception(at)
    path = app_env["checkpoints"] / "table1-synth.json"
    want = compare_scores(load_result_set(f"{path}:blackbox"),
                          load_result_set(f"{path}:timefreq"), margin=3.0)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["A − B (points)"] == f"{want.mean_difference:+.2f}"
    assert metrics["95 % interval"] == f"[{want.ci95[0]:+.2f}, {want.ci95[1]:+.2f}]"
    assert "p (equivalence ±3)" in metrics and "p (Wilcoxon)" in metrics
    assert metrics["Detectable (80 % power)"] == f"±{want.mdd:.1f}"
    text = " ".join(m.value for m in [*at.markdown, *at.caption])
    assert want.power_sentence in text
    assert "Paired: both tested the same songs in each of 10 folds" in text
    assert "Verdict:" in text and "Verdict rule" in text
    assert "no real difference" not in text and " equal " not in text
    assert not at.warning

    # frequency recorded no fingerprints: the comparison is unpaired and says why
    at.selectbox[1].set_value("shipped frequency").run()
    no_exception(at)
    (warning,) = at.warning
    assert warning.value.startswith("Unpaired comparison: cannot pair folds")
    assert "did not record" in warning.value


def array(values) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array (``{"dtype", "bdata"}``)."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values)


def test_results_page_shows_a_shipped_rows_curves_and_recall(app_env):
    at = page("pages/3_Results.py").run()
    no_exception(at)
    detail = next(s for s in at.selectbox if s.label == "Result")
    assert detail.value == "shipped blackbox"  # no run yet: the first shipped row
    assert "No training curves for these results." in [i.value for i in at.info]
    detail.set_value("shipped time").run()
    no_exception(at)
    charts = [plotly.io.from_json(c.proto.spec) for c in at.get("plotly_chart")]
    curves = next(c for c in charts if c.layout.title.text.startswith("Training"))
    assert len(curves.data) == 2 * 4  # 2 folds × loss/accuracy × train/validation
    accuracy = [t for t in curves.data if t.xaxis == "x2"]
    assert max(max(array(t.y)) for t in accuracy) == pytest.approx(60.0)  # 0.2 × 3, in %
    assert curves.layout.xaxis.dtick == 1  # 3 epochs: whole-epoch ticks
    recall = at.dataframe[-1].value  # the shipped fixture's confusion: 6 of 13 per class
    assert list(recall["class"]) == list(CLASSES)
    assert list(recall["recall (%)"]) == pytest.approx([600 / 13] * len(CLASSES))
    labels = [b.label for b in at.get("download_button")]
    assert "Per-class recall of shipped time (CSV)" in labels


def write_wav(path: Path, y: np.ndarray) -> Path:
    sf.write(path, y.astype(np.float32), SR, subtype="PCM_16")
    return path


@pytest.fixture
def predict_page(app_env) -> AppTest:
    at = page("pages/4_Predict.py").run()
    no_exception(at)
    # the model's whole name, in the page's width, and what it learnt before any upload
    assert at.selectbox(key="model").options[0] == (
        "time · shipped synth-time · fold 0 · test 50.0 % · uncalibrated")
    assert not at.sidebar.selectbox or all(s.key != "model" for s in at.sidebar.selectbox)
    (note,) = at.info[:1]
    assert plain(note.value).startswith("This model: time model trained on tiny; protocol clean")
    at.sidebar.radio[1].set_value("A file on this machine").run()
    return at


def test_predict_a_wav_shows_prediction(predict_page, tmp_path):
    t = np.arange(int(5.0 * SR)) / SR
    path = write_wav(tmp_path / "song.wav", 0.3 * np.sin(2 * np.pi * 440 * t))
    at = predict_page
    at.text_input[0].set_value(str(path)).run()
    no_exception(at)
    assert not at.error
    (verdict,) = list(at.success) + list(at.warning)
    predicted = at.metric[0].value
    assert predicted in CLASSES and predicted in verdict.value
    # an untrained, uncalibrated model: unsure exactly when its top probability is < 50 %
    confidence = float(at.metric[1].value.rstrip("%")) / 100
    assert (verdict in at.warning) == (confidence < 0.5 - 0.005) or abs(confidence - 0.5) < 0.01
    assert "uncalibrated model" in " ".join(c.value for c in at.caption)
    # its calibration was never measured on test songs, and the page says so
    assert any(c.value.startswith("Calibration not measured") for c in at.caption)
    # above the prediction, shown before any upload (not in a tooltip): what the model was
    # trained on
    (model,) = at.info
    assert plain(model.value) == ("This model: time model trained on tiny; protocol clean, preset "
                           "quick; fold 0 test accuracy 50.00 % on its 2 held-out test songs. "
                           "It knows only what it learnt there: audio unlike that data set "
                           "gets a guess among its classes.")
    # the rule that decided, each value beside the model's cutoff (uncalibrated: 50 %)
    assert re.search(r"confidence \d+\.\d% [<≥] 50\.0%", verdict.value), verdict.value
    assert "patches 2 ≥ 2" in verdict.value or "patches" not in verdict.value
    assert at.metric[2].value == "2 / 2" or at.metric[2].value.endswith("/ 2")
    assert at.metric[3].label == "Tempo (BPM)" and float(at.metric[3].value) > 0
    assert len(at.get("plotly_chart")) == 4


def test_predict_track_of_the_data_set(app_env):
    at = page("pages/4_Predict.py").run()
    at.sidebar.radio[1].set_value("A track of the data set").run()
    no_exception(at)
    assert at.metric[0].value in CLASSES
    # its true class, and why its role in the model's split is unknown here (the test model
    # records no test songs)
    (truth,) = [m.value for m in at.markdown if m.value.startswith("True class")]
    track = next(s for s in at.selectbox if s.label == "Track")
    picked = track.options[track.value]  # "Dance / track"
    assert truth.startswith(f"True class: **{picked.split(' / ')[0]}**")
    assert "records no fold and test songs" in truth
    assert any("Estimated tempo" in m.value for m in at.markdown)


@pytest.mark.parametrize("content, message", [
    (b"this is not audio at all" * 50, "cannot decode"),
    (b"", "empty"),
    ("short", "1.81 s"),
    ("silent", "silent"),
])
def test_predict_bad_audio_shows_error(predict_page, tmp_path, content, message):
    path = tmp_path / "bad.wav"
    if content == "short":
        write_wav(path, 0.3 * np.sin(np.arange(SR) / 10.0))  # 1 s < one patch
    elif content == "silent":
        write_wav(path, np.zeros(4 * SR))
    else:
        path.write_bytes(content)
    at = predict_page
    at.text_input[0].set_value(str(path)).run()
    no_exception(at)
    (error,) = at.error
    assert message in error.value and "bad.wav" in error.value
    # the page keeps working: a good file next
    t = np.arange(int(3.0 * SR)) / SR
    good = write_wav(tmp_path / "good.wav", 0.3 * np.sin(2 * np.pi * 220 * t))
    at.text_input[0].set_value(str(good)).run()
    assert not at.error and at.metric[0].value in CLASSES


def run_states(at: AppTest) -> str:
    """The run cards' headings, as text (the page escapes names for Markdown)."""
    return plain(" ".join(m.value for m in at.markdown if "folds" in m.value))


def poll(at: AppTest, *, until: str, timeout_s: float) -> str:
    """Rerun the page (as the 2 s fragment timer would) until a run shows ``until``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        at.run()
        no_exception(at)
        states = run_states(at)
        if until in states:
            return states
        time.sleep(1.0)
    raise AssertionError(f"no run reached {until} within {timeout_s} s: {states!r}")


def choose_arch(at: AppTest, arch: str) -> AppTest:
    return next(s for s in at.sidebar.selectbox if s.label == "Architecture") \
        .set_value(arch).run()


def sidebar_input(at: AppTest, label: str):
    return next(w for w in (*at.sidebar.number_input, *at.sidebar.text_input)
                if w.label == label)


def launch_button(at: AppTest):
    return at.button(key="launch")


def test_train_launches_a_run_and_shows_it_finishing(app_env):
    at = page("pages/2_Train.py").run()
    no_exception(at)
    assert any("No runs yet" in i.value for i in at.info)
    # one architecture at a time: choosing time after frequency launches time only
    choose_arch(at, "frequency")
    choose_arch(at, "time")
    sidebar_input(at, "Folds").set_value(2)
    sidebar_input(at, "Max epochs (0 = preset's)").set_value(1)
    next(c for c in at.sidebar.checkbox if c.label == "AMP (bfloat16)").check()
    at.run()
    # the estimate before Launch: from this machine (a micro-benchmark: no runs yet)
    estimate = next(c.value for c in at.caption if c.value.startswith("Estimated: about"))
    assert "micro-benchmark of time" in estimate and "1 epoch per fold" in estimate
    # Launch sits beside the estimate in the page, not at the bottom of the sidebar
    assert all(b.label != "Launch" for b in at.sidebar.button)
    launch_button(at).click().run()
    no_exception(at)
    launched = list((app_env["runs"] / ".launches").iterdir())
    assert [p.name.split("-")[2] for p in launched if p.is_dir()] == ["time"]
    states = poll(at, until="`finished`", timeout_s=120)
    assert "2/2 folds" in states and "accuracy" in states
    # the card says what the run was launched with, after a reload too
    assert "2 folds · up to 1 epoch · preset quick · protocol clean · seed 0" in [
        c.value for c in page("pages/2_Train.py").run().caption]
    run_dir = next(p for p in app_env["runs"].iterdir() if p.name.endswith("-time-quick"))
    assert (run_dir / "results.json").is_file()
    # The AMP box reaches the trainer: on its command line and in the run's config.
    launch = json.loads((runs.launch_dir(run_dir) / runs.LAUNCH_FILE).read_text())
    assert "--amp" in launch["command"]
    assert json.loads((run_dir / "config.json").read_text())["train_config"]["amp"] is True
    # the app's log of the subprocess
    assert (runs.launch_dir(run_dir) / runs.LOG_FILE).is_file()
    # the finished run is now a result and a model
    results = page("pages/3_Results.py").run()
    no_exception(results)
    table = results.dataframe[0].value.set_index("run")
    # beside the shipped 10-fold rows, this run says it is 2 folds of 1 epoch
    assert table.loc[run_dir.name, "folds"] == "2/2"
    assert table.loc[run_dir.name, "recipe"] == "quick · ≤ 1 epoch · clean"
    predict = page("pages/4_Predict.py").run()
    options = predict.selectbox(key="model").options
    assert any(o.startswith(f"time · run {run_dir.name} · fold 0 · test ") and
               o.endswith(" · calibrated") for o in options), options


def test_train_runs_one_at_a_time_and_queues_the_rest(app_env):
    at = page("pages/2_Train.py").run()
    sidebar_input(at, "Folds").set_value(2)
    sidebar_input(at, "Max epochs (0 = preset's)").set_value(1)
    for arch in ("time", "frequency"):
        choose_arch(at, arch)
        launch_button(at).click().run()
    no_exception(at)
    states = run_states(at)
    assert states.count("`queued`") == 1, states  # the default cap: one run at a time
    assert any("Waiting for a free training slot" in c.value for c in at.caption)
    # a queued run's card shows its settings from its launch record (no config.json yet)
    assert "2 folds · up to 1 epoch · preset quick · protocol clean" in [
        c.value for c in at.caption]
    states = poll(at, until="`finished`", timeout_s=180)
    deadline = time.monotonic() + 180
    while states.count("`finished`") < 2:
        assert "`failed`" not in states and time.monotonic() < deadline, states
        time.sleep(1.0)
        at.run()
        states = run_states(at)
    records = [json.loads(p.read_text())
               for p in (app_env["runs"] / ".launches").glob("*/launch.json")]
    assert sorted(r["state"] for r in records) == ["started", "started"]
    assert all(r["process"]["started"] > 0 for r in records)


def test_train_cancel_stops_the_subprocess(app_env):
    at = page("pages/2_Train.py").run()
    choose_arch(at, "blackbox")
    sidebar_input(at, "Folds").set_value(2)
    sidebar_input(at, "Max epochs (0 = preset's)").set_value(500)
    launch_button(at).click().run()
    no_exception(at)
    poll(at, until="`running`", timeout_s=60)
    run_dir = next(p for p in app_env["runs"].iterdir() if p.name.endswith("-blackbox-quick"))
    pid = json.loads((run_dir / "status.json").read_text())["pid"]
    cancel = [b for b in at.button if b.label == "Cancel"]
    assert cancel
    cancel[0].click().run()
    states = poll(at, until="`cancelled`", timeout_s=60)
    assert "`running`" not in states and "`starting`" not in states
    assert any("--resume" in c.value for c in at.caption)
    from tfcnn.runs import pid_alive

    deadline = time.monotonic() + 20
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)  # the trainer writes "cancelled", then exits
    assert not pid_alive(pid)
    run_control.run_view(run_dir)  # reaps the child


def test_train_filter_shapes_with_live_parameter_count(app_env):
    from tfcnn.models import build_model, count_parameters

    at = page("pages/2_Train.py").run()
    choose_arch(at, "time")
    assert any("**7,336** trainable parameters" in c.value for c in at.sidebar.caption)
    # a filter longer than the 80-frame patch is refused, with the reason, and not launched
    sidebar_input(at, "Temporal filter (bands × frames)").set_value("1x120").run()
    assert any("does not fit its input of 40 x 80" in e.value for e in at.sidebar.error)
    assert launch_button(at).disabled
    sidebar_input(at, "Temporal filter (bands × frames)").set_value("1x30").run()
    sidebar_input(at, "Filters per convolution").set_value(8).run()
    expected = count_parameters(build_model("time", len(CLASSES), time_filter=(1, 30),
                                            n_filters=8))
    assert any(f"**{expected:,}** trainable parameters · the paper's time: 7,336" in c.value
               for c in at.sidebar.caption)
    # the frequency model has no temporal filter: its own options only
    choose_arch(at, "frequency")
    labels = {w.label for w in at.sidebar.text_input}
    assert "Frequency filter (bands × frames)" in labels
    assert "Temporal filter (bands × frames)" not in labels
    # the chosen shapes reach the trainer
    choose_arch(at, "time")
    sidebar_input(at, "Folds").set_value(2)
    sidebar_input(at, "Max epochs (0 = preset's)").set_value(1)
    launch_button(at).click().run()
    no_exception(at)
    poll(at, until="`finished`", timeout_s=120)
    run_dir = next(p for p in app_env["runs"].iterdir() if p.name.endswith("-time-quick"))
    command = json.loads((runs.launch_dir(run_dir) / runs.LAUNCH_FILE).read_text())["command"]
    assert command[command.index("--time-filter") + 1] == "1x30"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["arch_params"]["time_filter"] == [1, 30] and config["n_params"] == expected


def test_train_resume_archive_restore_delete(app_env):
    from tfcnn.request import RunRequest
    from tfcnn.train import train_run

    run_dir = app_env["runs"] / "20260101-000000-time-quick"
    train_run(RunRequest(app_env["data"], "time", n_folds=2, epochs=1), run_dir)
    (runs.fold_dir(run_dir, 1) / runs.FOLD_RESULT_FILE).unlink()  # as if cancelled in fold 1
    status = json.loads((run_dir / runs.STATUS_FILE).read_text())
    (run_dir / runs.STATUS_FILE).write_text(json.dumps({**status, "state": "cancelled"}))

    at = page("pages/2_Train.py").run()
    assert "`cancelled` · 1/2 folds" in run_states(at)
    caption = next(c.value for c in at.caption if "**Resume** runs" in c.value)
    assert f"python -m tfcnn train {app_env['data']} --arch time --folds 2 " in caption
    assert "--epochs 1 " in caption
    assert caption.rstrip("`").endswith(f"--time-filter 1x60 --n-filters 32 "
                                        f"--out {run_dir} --resume")
    next(b for b in at.button if b.label == "Resume").click().run()
    no_exception(at)
    states = poll(at, until="`finished`", timeout_s=120)
    assert "2/2 folds" in states
    assert runs.complete_folds(run_dir) == [0, 1]

    # Archive: off the Train list, off Results, restorable
    next(b for b in at.button if b.label == "Archive").click().run()
    no_exception(at)
    assert not (run_dir / "config.json").exists()
    assert run_dir.name not in run_states(at)
    assert any(e.label == "Archived runs (1)" for e in at.expander)
    results = page("pages/3_Results.py").run()
    assert not any(run_dir.name in str(df.value) for df in results.dataframe)
    next(b for b in at.button if b.label == "Restore").click().run()
    assert (run_dir / "config.json").is_file() and run_dir.name in run_states(at)

    # Delete asks first; "Keep it" keeps it, "Yes, delete" removes the folder
    next(b for b in at.button if b.label == "Delete").click().run()
    assert any("cannot be undone" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "Keep it").click().run()
    assert run_dir.is_dir() and not any("cannot be undone" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "Delete").click().run()
    next(b for b in at.button if b.label == "Yes, delete").click().run()
    no_exception(at)
    assert not run_dir.exists()
    assert any("No runs yet" in i.value for i in at.info)
    run_control.run_folders()  # reaps the resumed trainer


# ----------------------------------------------------------------------------- helpers


def test_format_seconds():
    assert run_control.format_seconds(None) == "—"
    assert run_control.format_seconds(12.4) == "12 s"
    assert run_control.format_seconds(185) == "3 min 05 s"
    assert run_control.format_seconds(3720) == "1 h 02 min"


#: The safety probes these tests answer (tests/conftest.py marks them ``safety``;
#: ``scripts/safety_report.py`` writes docs/safety-probes.md from their results).
SAFETY_PROBES = {
    "test_train_runs_one_at_a_time_and_queues_the_rest": {
        "probe": "Train: Launch clicked twice (cap 1)",
        "before": "10 training processes from two clicks", "must": "1 training, 1 queued"},
    "test_data_choice_is_per_session_and_a_refusal_says_why": {
        "probe": "one session picks a bad folder; a second opens",
        "before": "choice saved in runs/.app-settings.json: every new session broken",
        "must": "per session, nothing saved"},
    "test_folder_field_keeps_every_edit": {
        "probe": "sidebar Folder: path A, Enter; path B, Enter", "before": "reverted to A",
        "must": "B kept"},
}
