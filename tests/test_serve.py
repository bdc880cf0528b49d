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
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tfcnn.ui.gate import COOKIE, SIGN_IN_PATH, CookieSigner, GateLimits, GuessLimiter
from tfcnn.ui.serve import (
    ENV_PASSWORD,
    ENV_TRUSTED_PROXIES,
    check_exposure,
    free_port,
    is_loopback,
    listening_addresses,
    server_env,
    streamlit_command,
)

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"

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


def test_pages_own_sign_in_form_is_rate_limited(app_env, monkeypatch):
    """Streamlit started without the gate (by hand, on loopback): the form counts guesses."""
    from tfcnn.ui import gate

    monkeypatch.setenv(ENV_PASSWORD, "correct horse")
    monkeypatch.setattr(gate, "LIMITER", GuessLimiter())
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    for _ in range(5):
        at.text_input[0].input("wrong")
        at.button[0].click().run()
        assert [e.value for e in at.error] == ["Wrong password."]
    at.text_input[0].input("correct horse")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Too many wrong passwords: try again in 60 s."]
    assert [t.value for t in at.title] == ["Sign in"]


def test_open_address_with_password_but_no_gate_shows_nothing(app_env, monkeypatch):
    monkeypatch.setenv(ENV_PASSWORD, "correct horse")
    saved = st.get_option("server.address")
    st.config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
        assert not at.exception
        (error,) = at.error
        assert "started without its sign-in gate" in error.value
        assert not at.title and not at.text_input
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


# ------------------------------------------------------------ the sign-in gate, for real

@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """`python -m tfcnn.ui.serve` with a password on a free loopback port (the `make run`
    path: Streamlit through the preload, `gated_app.py` in front), stopped at the end."""
    tmp = tmp_path_factory.mktemp("gated")
    port = free_port()
    env = dict(os.environ, TFCNN_DATA_DIR=str(tmp / "no-data"),
               TFCNN_RUNS_DIR=str(tmp / "runs"), TFCNN_CHECKPOINTS_DIR=str(tmp / "ck"))
    env[ENV_PASSWORD] = PASSWORD
    env.pop(ENV_TRUSTED_PROXIES, None)  # loopback: the test's X-Forwarded-For is believed
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tfcnn.ui.serve", "--port", str(port)],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                urllib.request.urlopen(url + "/", timeout=2)
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the gated app did not start"
            time.sleep(0.5)
        yield {"url": url, "log": log, "port": port}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _request(url, *, method="GET", data=None, headers=None):
    """(status, headers, body) of one real HTTP request; redirects are not followed."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def _sign_in(url, password, client=None):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if client:
        headers["X-Forwarded-For"] = client
    return _request(url + SIGN_IN_PATH, method="POST", headers=headers,
                    data=urllib.parse.urlencode({"password": password}).encode())


def _websocket_status(url, cookie=None) -> int:
    """The HTTP status of a websocket handshake on Streamlit's script stream (101: open)."""
    import websockets.sync.client as ws
    from websockets.exceptions import InvalidStatus

    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    try:
        with ws.connect(url.replace("http", "ws") + "/_stcore/stream", open_timeout=30,
                        additional_headers=headers, subprotocols=["streamlit"]):
            return 101
    except InvalidStatus as e:
        return e.response.status_code


#: Every kind of endpoint Streamlit's server has, each asked as a signed-out client would.
ENDPOINTS = [("GET", "/"), ("GET", "/Predict"), ("GET", "/_stcore/health"),
             ("GET", "/_stcore/metrics"), ("GET", "/_stcore/host-config"),
             ("GET", "/media/0123456789abcdef.wav"), ("GET", "/static/js/index.js"),
             ("GET", "/favicon.png"), ("GET", "/component/x/index.html"),
             ("PUT", "/_stcore/upload_file/session/file"), ("OPTIONS", "/_stcore/upload_file/s/f")]


def test_gate_answers_nothing_before_sign_in(gated, record_property):
    url = gated["url"]
    answers = {}
    for method, path in ENDPOINTS:
        # 64 KB: within the socket's buffer, so the client has sent it all when the gate
        # answers without reading it (19 MB ones: docs/security.md, measured by hand)
        body = b"x" * 65536 if method == "PUT" else None
        status, _, content = _request(url + path, method=method, data=body)
        answers[path] = status
        assert status == 401, (path, status)
        assert b"<h1>Sign in</h1>" in content and b"Streamlit" not in content
        assert b"Traceback" not in content
    # the script's websocket: refused at the handshake, with or without a forged cookie
    assert _websocket_status(url) == 403
    assert _websocket_status(url, cookie="9999999999.00.forged") == 403
    # the one thing that answers: the sign-in form itself
    status, _, content = _request(url + SIGN_IN_PATH)
    assert status == 200 and b'name=password' in content
    record_property("observed", f"{len(ENDPOINTS)} HTTP endpoints: 401 sign-in page; "
                                "websocket: 403 at the handshake")


def test_gate_signs_in_with_a_signed_cookie(gated):
    url = gated["url"]
    status, _, content = _sign_in(url, "wrong", client="10.9.0.1")
    assert status == 401 and b"Wrong password." in content
    status, headers, _ = _sign_in(url, PASSWORD, client="10.9.0.1")
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    signed_in = {"Cookie": f"{COOKIE}={token}"}
    status, _, content = _request(url + "/", headers=signed_in)
    assert status == 200 and b'id="root"' in content  # Streamlit's own page
    assert _request(url + "/_stcore/health", headers=signed_in)[:1] == (200,)
    assert _websocket_status(url, cookie=token) == 101
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert _request(url + "/_stcore/health", headers={"Cookie": f"{COOKIE}={forged}"})[0] == 401
    assert _websocket_status(url, cookie=forged) == 403


def test_gate_locks_a_client_out_after_five_wrong_passwords(gated, record_property):
    url = gated["url"]
    for _ in range(5):
        assert _sign_in(url, "guess", client="10.9.0.2")[0] == 401
    status, headers, content = _sign_in(url, PASSWORD, client="10.9.0.2")
    assert status == 429 and b"Too many wrong passwords" in content
    assert 55 <= int(headers["Retry-After"]) <= 61
    # another client (a trusted proxy's X-Forwarded-For) is not locked out
    assert _sign_in(url, PASSWORD, client="10.9.0.3")[0] == 303
    deadline = time.monotonic() + 10
    while "client 10.9.0.2 locked out for 60 s" not in gated["log"].read_text():
        assert time.monotonic() < deadline, gated["log"].read_text()
        time.sleep(0.2)
    record_property("observed", "6th guess: 429, Retry-After 60 s; log: 'tfcnn gate: client "
                                "10.9.0.2 locked out for 60 s after 5 wrong passwords'")


def test_gated_app_opens_in_a_browser_after_sign_in(gated):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_default_timeout(90_000)
            page.goto(gated["url"] + "/")
            assert page.locator("h1").inner_text() == "Sign in"
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
            page.wait_for_selector('[data-testid="stSidebar"]')
            assert page.locator('[data-testid="stException"]').count() == 0
            assert "Sign in" not in page.locator('[data-testid="stMain"]').inner_text()
        finally:
            browser.close()


def test_guess_limiter_doubles_lockouts_and_closes_to_all():
    now = [1000.0]
    limiter = GuessLimiter(GateLimits(), clock=lambda: now[0])
    for lockout in (60, 120, 240, 480, 960, 1920, 3600, 3600):
        for _ in range(5):
            assert limiter.wait_s("a") == 0
            limiter.failed("a")
        assert limiter.wait_s("a") == lockout
        now[0] += lockout + 61  # past the lockout and the window: the global count resets
    limiter.succeeded("a")
    assert limiter.wait_s("a") == 0 and len(limiter) == 0
    # 4 wrong guesses each from 8 addresses: none locked alone, 30 in a minute close it to all
    for i in range(8):
        for _ in range(4):
            limiter.failed(f"c{i}")
    assert limiter.wait_s("newcomer") == 60
    now[0] += 61
    assert limiter.wait_s("newcomer") == 0
    now[0] += 3700  # quiet clients are forgotten on the next failure
    limiter.failed("z")
    assert len(limiter) == 1


def test_cookie_signer_refuses_forged_and_expired_tokens():
    now = [1_000_000.0]
    signer = CookieSigner(clock=lambda: now[0])
    token = signer.issue(60)
    assert signer.valid(token)
    assert not CookieSigner().valid(token)  # another server's key
    assert not signer.valid(token.replace(".", ".0", 1))
    for bad in (None, "", "x", "..", "a.b.c", "é.é.é", "1" * 500):
        assert not signer.valid(bad)
    now[0] += 61
    assert not signer.valid(token)


def test_server_trusts_forwarded_addresses_only_from_named_proxies(tmp_path):
    assert server_env("127.0.0.1", env={})["FORWARDED_ALLOW_IPS"] == "127.0.0.1,::1"
    assert server_env("0.0.0.0", env={})["FORWARDED_ALLOW_IPS"] == ""
    assert server_env("0.0.0.0", env={ENV_TRUSTED_PROXIES: "10.0.0.5"})[
        "FORWARDED_ALLOW_IPS"] == "10.0.0.5"
    cmd = streamlit_command("0.0.0.0", 1, gated=True, tls=("c.pem", "k.pem"))
    assert cmd[4].endswith("gated_app.py")
    assert cmd[cmd.index("--client.showErrorDetails") + 1] == "none"
    assert cmd[cmd.index("--server.sslCertFile") + 1] == "c.pem"
    assert streamlit_command("127.0.0.1", 1)[4].endswith("app.py")
    assert "--client.showErrorDetails" not in streamlit_command("127.0.0.1", 1)
    result = subprocess.run([sys.executable, "-m", "tfcnn.ui.serve", "--tls-cert",
                             str(tmp_path / "none.pem"), "--tls-key", str(tmp_path / "k.pem")],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'none.pem'}: no such file (TLS certificate or key)"]


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
    "test_gate_answers_nothing_before_sign_in": [
        {"probe": "signed out: PUT files to `/_stcore/upload_file/<session>/<id>`",
         "before": "130 uploads answered 204; server 412 → 2,885 MB",
         "must": "401 before Streamlit reads them (130 × 19 MB by `python -m "
                 "scripts.gate_uploads`: server 398 → 400 MB)"},
        {"probe": "signed out: open the script websocket `/_stcore/stream`",
         "before": "opened; upload URLs handed out",
         "must": "refused at the handshake (403)"},
        {"probe": "signed out: `/media/<id>`, `/_stcore/metrics`, static files",
         "before": "served (CSVs, decoded audio, metrics)", "must": "401 sign-in page"}],
    "test_gate_signs_in_with_a_signed_cookie": {
        "probe": "forged sign-in (a forged widget state or cookie)",
        "before": "refused, but answered with a full traceback with server paths",
        "must": "refused at the gate (401/403), no traceback"},
    "test_gate_locks_a_client_out_after_five_wrong_passwords": {
        "probe": "300 wrong passwords at 5 per second",
        "before": "no delay, no lockout",
        "must": "locked out after 5 within 60 s (doubling to 1 h), one log line"},
}
