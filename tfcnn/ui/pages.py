"""The app's pages: their files, titles, icons and URL paths, in menu order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    """One page of the app (``path`` relative to ``app.py``; ``url`` "" for the home page)."""

    path: str
    title: str
    icon: str
    url: str


PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/0_Home.py", "Home", ":material/home:", ""),
    PageSpec("pages/1_Data.py", "Data", ":material/library_music:", "Data"),
    PageSpec("pages/2_Train.py", "Train", ":material/model_training:", "Train"),
    PageSpec("pages/3_Results.py", "Results (Table 1)", ":material/table_chart:", "Results"),
    PageSpec("pages/4_Predict.py", "Predict", ":material/graphic_eq:", "Predict"),
    PageSpec("pages/5_Filters.py", "Filters", ":material/filter_alt:", "Filters"),
)
