"""Signed-out uploads against the gated app: does the server's memory grow?

``python -m scripts.gate_uploads [--n 130] [--mb 19]``

Starts the app as ``make run`` does with ``TFCNN_APP_PASSWORD`` set (``python -m
tfcnn.ui.serve`` on a free loopback port), PUTs ``--n`` files of ``--mb`` MB to Streamlit's
upload endpoint ``/_stcore/upload_file/<session>/<id>`` without signing in (issue 22's probe:
before the gate, 130 such uploads answered 204 and took the server from 412 to 2,885 MB),
and prints the answers and the server's resident memory (VmRSS) before and after.
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tfcnn.ui.serve import ENV_PASSWORD, free_port

REPO = Path(__file__).resolve().parents[1]


def resident_mb(pid: int) -> float:
    """VmRSS of process ``pid`` in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.gate_uploads",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=130, help="uploads (default 130)")
    parser.add_argument("--mb", type=int, default=19, help="MB each (default 19)")
    args = parser.parse_args(argv)
    port = free_port()
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"tfcnn-gate-uploads-{port}"
    env = dict(os.environ, **{ENV_PASSWORD: "probe password", "TFCNN_DATA_DIR":
                              str(scratch / "data"), "TFCNN_RUNS_DIR": str(scratch / "runs")})
    proc = subprocess.Popen([sys.executable, "-m", "tfcnn.ui.serve", "--port", str(port)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                print("error: the gated app did not start", file=sys.stderr)
                return 2
            time.sleep(0.5)
        time.sleep(2.0)
        before = resident_mb(proc.pid)
        body = b"\0" * (args.mb * 2**20)
        answers: dict[str, int] = {}
        for i in range(args.n):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                conn.request("PUT", f"/_stcore/upload_file/s{i}/f{i}", body=body)
                answer = str(conn.getresponse().status)
            except OSError as exc:  # the gate answered and closed before the body was sent
                answer = type(exc).__name__
            finally:
                conn.close()
            answers[answer] = answers.get(answer, 0) + 1
        time.sleep(1.0)
        after = resident_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"{args.n} signed-out PUTs of {args.mb} MB: answers {answers}; server resident "
          f"memory {before:.0f} MB before, {after:.0f} MB after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
