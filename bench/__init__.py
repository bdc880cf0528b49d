"""Benchmarks that print ratios against a baseline run in the same process.

Every module ``bench/<name>.py`` with a ``main()`` function is a benchmark;
``python -m bench`` runs them all, ``python -m bench NAME [NAME ...]`` only those.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType


def benchmark_names() -> list[str]:
    """Names of the modules in ``bench/`` that may hold a benchmark (sorted, no ``_x``)."""
    folder = Path(__file__).resolve().parent
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(folder)])
        if not info.name.startswith("_") and not info.ispkg
    )


def load(name: str) -> ModuleType:
    """Import ``bench.<name>`` and check that it has a ``main()``."""
    names = benchmark_names()
    if name not in names:
        raise SystemExit(f"error: unknown benchmark {name!r}; valid: {', '.join(names)}")
    module = importlib.import_module(f"{__name__}.{name}")
    if not callable(getattr(module, "main", None)):
        raise SystemExit(f"error: bench/{name}.py has no main() function")
    return module


def run(names: list[str] | None = None) -> int:
    """Run the named benchmarks (all that have a ``main()`` when ``names`` is empty)."""
    if names:
        modules = [load(name) for name in names]
    else:
        modules = [importlib.import_module(f"{__name__}.{name}") for name in benchmark_names()]
        modules = [m for m in modules if callable(getattr(m, "main", None))]
    status = 0
    for module in modules:
        print(f"== bench {module.__name__.split('.')[-1]} ==", flush=True)
        # A main(argv=None) that parses its own options gets no arguments, not ours.
        takes_argv = bool(inspect.signature(module.main).parameters)
        status = max(status, int((module.main([]) if takes_argv else module.main()) or 0))
    return status
