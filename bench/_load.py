"""A busy machine on demand: processes that spin on a core each while a benchmark runs."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

#: Busy processes of the "busy" case (the issue's measurement: two on a shared machine).
BUSY_PROCESSES = 2


@contextlib.contextmanager
def busy_processes(n: int = BUSY_PROCESSES, *, settle_s: float = 0.5):
    """Spawn ``n`` Python processes that spin forever; kill them (by pid) on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(settle_s)  # let them get scheduled before timing starts
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(timeout=10)
