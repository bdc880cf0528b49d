"""``python -m tfcnn.ui.preload run app.py [streamlit options]``: Streamlit, with the pages'
heavy modules already loaded.

A page's first render otherwise pays for every module it imports on its first visit (torch,
plotly's figure validators, scipy.stats, pyarrow: seconds on a small, busy machine) while
the visitor waits. ``make run`` (:func:`tfcnn.ui.serve.streamlit_command`) starts Streamlit
through this module: those imports happen once, before the server listens, and each page's
first render only runs its own code.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time

#: The Streamlit layer's modules (and through them torch, scipy.stats and the tfcnn stages)
#: plus the libraries Streamlit itself loads on first use of a chart or a table.
PAGE_MODULES: tuple[str, ...] = (
    "tfcnn.ui.architectures", "tfcnn.ui.data_views", "tfcnn.ui.run_control",
    "tfcnn.ui.results", "tfcnn.ui.compare_view", "tfcnn.ui.lab", "tfcnn.ui.sweep",
    "tfcnn.ui.predict", "tfcnn.ui.assessment", "tfcnn.plots", "tfcnn.interpret",
    "scipy.stats", "pyarrow", "streamlit.elements.plotly_chart",
)


def warm_plotly() -> None:
    """Build and serialise one small figure of each trace type the pages draw: plotly loads
    a trace type's validators on its first use (tenths of a second each)."""
    import plotly.graph_objects as go

    fig = go.Figure([go.Scatter(x=[0], y=[0]), go.Bar(x=[0], y=[0]), go.Box(y=[0]),
                     go.Heatmap(z=[[0.0]])])
    fig.update_layout(title="warm-up")
    fig.to_json()


def preload(modules: tuple[str, ...] = PAGE_MODULES) -> float:
    """Import ``modules`` and warm plotly; the seconds it took."""
    start = time.perf_counter()
    # Before the server exists, each cache decorator's check logs "No runtime found"; the
    # caches themselves are created on first call, inside the runtime.
    import streamlit  # noqa: F401  (creates its loggers, with their levels)

    quiet = [logging.getLogger(f"streamlit.runtime.caching.{api}")
             for api in ("cache_data_api", "cache_resource_api")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        for name in modules:
            importlib.import_module(name)
        warm_plotly()
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    seconds = preload()
    print(f"tfcnn: page modules loaded in {seconds:.1f} s", file=sys.stderr, flush=True)
    from streamlit.web.cli import main as streamlit_main

    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    return streamlit_main()


if __name__ == "__main__":
    sys.exit(main())
