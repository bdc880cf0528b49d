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


def print_idle_busy(idle: dict, busy: dict, threads: dict, *, unit: str, scale: float) -> None:
    """The idle/busy table of a thread-policy benchmark: one row per mode in ``threads``
    (``{mode: thread count}``), times in ``unit`` (seconds × ``scale``), then the busy ratio
    of torch's default threads to one thread per request."""
    print(f"{'threads':<32s} {'idle ' + unit:>8s} {'busy ' + unit:>8s} {'busy/idle':>9s}  "
          f"(busy: {BUSY_PROCESSES} spinning processes)")
    for name, n in threads.items():
        print(f"{name + f' ({n})':<32s} {scale * idle[name]:8.2f} {scale * busy[name]:8.2f} "
              f"{busy[name] / idle[name]:8.1f}x")
    print(f"busy: default / one per request: "
          f"{busy['torch default'] / busy['one per request']:.1f}x")
