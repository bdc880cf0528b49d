"""``python -m tfcnn.ui.serve [--host H] [--port P] [--tls-cert F --tls-key F]``: start the
app, safely by default.

The app listens on the loopback interface unless the operator asks for another address;
then ``TFCNN_APP_PASSWORD`` must be set, or this refuses to start (one ``error:`` line, exit
code 2) before anything is served. The pages check the same rule again
(:func:`tfcnn.ui.access.require_access`), so starting Streamlit by hand on an open address
without a password shows nothing either.

With a password set, Streamlit is started through ``gated_app.py``: every endpoint of its
server sits behind :class:`tfcnn.ui.gate.SignInGate`; error details in the browser are
reduced to a generic message (``client.showErrorDetails = none``, the traceback goes to the
server's log); ``--tls-cert``/``--tls-key`` serve HTTPS directly. ``TFCNN_TRUSTED_PROXIES``
(comma-separated addresses) names the reverse proxies whose ``X-Forwarded-For`` gives the
client address the guess limits count by; default: the loopback addresses when the app
listens on loopback (a local TLS proxy), none otherwise.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from pathlib import Path

from tfcnn.ui.gate import ENV_PASSWORD

#: Comma-separated addresses of reverse proxies trusted to say who the client is.
ENV_TRUSTED_PROXIES = "TFCNN_TRUSTED_PROXIES"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
APP = Path(__file__).resolve().parents[2] / "app.py"
#: ``app.py`` behind the sign-in gate (an ``st.App`` launcher), served when a password is set.
GATED_APP = APP.with_name("gated_app.py")


def is_loopback(address: str | None) -> bool:
    """Whether a listening address reaches only this machine (``127.0.0.0/8``, ``::1``,
    ``localhost``). An empty address means every interface: not loopback."""
    address = (address or "").strip().strip("[]")
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_exposure(address: str | None, env=None) -> str | None:
    """Why serving on ``address`` is refused, or None when it is allowed."""
    env = os.environ if env is None else env
    if is_loopback(address) or env.get(ENV_PASSWORD):
        return None
    return (f"refusing to serve on {address or 'every interface'!s} without a password: set "
            f"{ENV_PASSWORD} (and put TLS in front, see README 'Exposing the app'), or serve "
            f"on {DEFAULT_HOST}")


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port nothing listens on at ``host`` right now (chosen by the kernel)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _proc_address(field: str) -> str:
    """``/proc/net/tcp*``'s hex address (host byte order, 32-bit words) as an IP string."""
    raw = bytes.fromhex(field)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listening_addresses(port: int) -> list[str]:
    """The local addresses of the TCP sockets listening on ``port`` (Linux ``/proc/net``),
    sorted, e.g. ``["127.0.0.1"]``; empty where nothing listens or ``/proc`` is absent."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(_proc_address(address))
    return sorted(found)


def streamlit_command(host: str, port: int, *, gated: bool = False,
                      tls: tuple[str, str] | None = None) -> list[str]:
    """The ``streamlit run`` command line for ``host:port``, through :mod:`tfcnn.ui.preload`
    (the pages' heavy imports done before the server listens).

    ``gated``: serve ``gated_app.py`` (every endpoint behind the sign-in gate, generic error
    messages in the browser) instead of ``app.py``; ``tls``: (certificate, key) files.
    """
    # No source watcher: each new browser session would scan every loaded module's files
    # (thousands, with torch preloaded) to decide what to watch for edits, seconds of CPU
    # per page load on a small machine; a user of the app does not edit its source.
    cmd = [sys.executable, "-m", "tfcnn.ui.preload", "run", str(GATED_APP if gated else APP),
           "--server.address", host, "--server.port", str(port), "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    if gated:
        cmd += ["--client.showErrorDetails", "none"]
    if tls:
        cmd += ["--server.sslCertFile", tls[0], "--server.sslKeyFile", tls[1]]
    return cmd


def server_env(host: str, env=None) -> dict[str, str]:
    """The server's environment: uvicorn trusts ``X-Forwarded-For`` only from the proxies
    in ``TFCNN_TRUSTED_PROXIES`` (default: loopback when ``host`` is loopback, else none)."""
    env = dict(os.environ if env is None else env)
    default = "127.0.0.1,::1" if is_loopback(host) else ""
    env["FORWARDED_ALLOW_IPS"] = env.get(ENV_TRUSTED_PROXIES, default)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfcnn.ui.serve",
                                     description="Start the tfcnn web app.")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", metavar="FILE", help="... and this private key")
    args = parser.parse_args(argv)
    problem = check_exposure(args.host)
    if not problem and bool(args.tls_cert) != bool(args.tls_key):
        problem = "--tls-cert and --tls-key go together"
    for name in (args.tls_cert, args.tls_key):
        if not problem and name and not Path(name).is_file():
            problem = f"{name}: no such file (TLS certificate or key)"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    gated = bool(os.environ.get(ENV_PASSWORD))
    tls = (str(Path(args.tls_cert).resolve()), str(Path(args.tls_key).resolve())) \
        if args.tls_cert else None
    if gated and not tls and not is_loopback(args.host):
        print(f"warning: serving on {args.host} without TLS: the password and the sign-in "
              "cookie travel in clear; use --tls-cert/--tls-key or a TLS proxy",
              file=sys.stderr)
    cmd = streamlit_command(args.host, args.port, gated=gated, tls=tls)
    os.chdir(APP.parent)
    # replaces this process: signals reach Streamlit directly
    os.execve(cmd[0], cmd, server_env(args.host))
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
