"""Who can reach the app: `make run` listens on loopback only; exposing it needs a password.

Real processes: `make run` on a free port (its listening sockets read from /proc/net/tcp*),
the launcher refusing an open address, and the pages' sign-in gate under AppTest.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tfcnn.ui.serve import (
    ENV_PASSWORD,
    check_exposure,
    free_port,
    is_loopback,
    listening_addresses,
)

REPO = Path(__file__).resolve().parents[1]




@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net")
def test_make_run_listens_on_loopback_only(tmp_path):
    data = tmp_path / "synth"
    data.mkdir()
    (data / "metadata.csv").write_text("track,dance\n")  # `make data` is then satisfied
    port = free_port()
    # -o: never (re)install the virtual environment from a test
    proc = subprocess.Popen(["make", "-s", "-o", ".venv/bin/.installed", "run", f"PORT={port}",
                             f"DATA={data}"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not listening_addresses(port):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the app did not start listening"
            time.sleep(0.3)
        time.sleep(1.0)  # let every socket (v4 and v6) open
        addresses = listening_addresses(port)
        assert addresses == ["127.0.0.1"], addresses
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_open_address_without_password_refuses_to_start():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != ENV_PASSWORD}
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "tfcnn.ui.serve", "--host", "0.0.0.0",
                             "--port", str(port)], cwd=REPO, env=env, capture_output=True,
                            timeout=60)
    assert result.returncode == 2
    err = result.stderr.decode().strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: refusing to serve on 0.0.0.0 without "
                                               "a password: set TFCNN_APP_PASSWORD")
    assert not listening_addresses(port)
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("", False), (None, False), ("::", False),
    ("192.168.1.5", False), ("example.org", False),
])
def test_is_loopback(address, loopback):
    assert is_loopback(address) is loopback
    assert (check_exposure(address, env={}) is None) is loopback
    assert check_exposure(address, env={ENV_PASSWORD: "s3cret"}) is None


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TFCNN_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("TFCNN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TFCNN_CHECKPOINTS_DIR", str(tmp_path / "checkpoints"))
    return tmp_path


@pytest.mark.parametrize("page", ["app.py", "pages/4_Predict.py", "pages/2_Train.py"])
def test_password_gate_before_any_page_content(app_env, monkeypatch, page):
    monkeypatch.setenv(ENV_PASSWORD, "correct horse")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    if page != "app.py":
        at.run()  # the entry point registers the pages (st.navigation) before one is chosen
        at.switch_page(page)
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in"]
    assert not at.sidebar.radio and not at.dataframe and not at.markdown
    at.text_input[0].input("wrong")
    at.button[0].click().run()  # a form sends its fields with the submit click
    assert [e.value for e in at.error] == ["Wrong password."]
    assert [t.value for t in at.title] == ["Sign in"]
    at.text_input[0].input("correct horse")
    at.button[0].click().run()
    assert not at.exception
    assert at.title and at.title[0].value != "Sign in"
    assert at.sidebar.radio  # the page itself, with its sidebar


def test_open_address_without_password_shows_nothing(app_env, monkeypatch):
    monkeypatch.delenv(ENV_PASSWORD, raising=False)
    saved = st.get_option("server.address")
    st.config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
        assert not at.exception
        (error,) = at.error
        assert "refusing to serve on 0.0.0.0 without a password" in error.value
        assert not at.title and not at.sidebar.radio
    finally:
        st.config.set_option("server.address", saved)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net")
def test_listening_addresses_reads_v4_and_v6_sockets():
    port = free_port()
    assert listening_addresses(port) == []
    with socket.socket() as v4:
        v4.bind(("127.0.0.1", port))
        v4.listen()
        assert listening_addresses(port) == ["127.0.0.1"]
        if socket.has_ipv6:
            with socket.socket(socket.AF_INET6) as v6:
                v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    v6.bind(("::1", port))
                except OSError:
                    return  # no IPv6 loopback here
                v6.listen()
                assert listening_addresses(port) == ["127.0.0.1", "::1"]
    assert listening_addresses(port) == []


#: The safety probes these tests answer (tests/conftest.py marks them ``safety``;
#: ``scripts/safety_report.py`` writes docs/safety-probes.md from their results).
SAFETY_PROBES = {
    "test_make_run_listens_on_loopback_only": {
        "probe": "`make run`: listening address", "before": "`*:8501`, every interface, no login",
        "must": "127.0.0.1 only"},
    "test_open_address_without_password_refuses_to_start": {
        "probe": "serve on 0.0.0.0 without TFCNN_APP_PASSWORD",
        "before": "served to the network, no login", "must": "one-line error, nothing listens"},
    "test_password_gate_before_any_page_content": {
        "probe": "TFCNN_APP_PASSWORD set: open a page", "before": "no login existed",
        "must": "sign-in form before any content"},
}
