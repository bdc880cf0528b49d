"""The Filters page's default tempo study of each shipped model, written beside it.

``python -m scripts.shipped_studies`` (``make studies``): for ``checkpoints/synth-time`` and
``synth-timefreq``, the study the Filters page opens with (real Ballroom tempi, no
counterfactual) is computed once and kept in ``checkpoints/.tfcnn-cache/studies/``, so a
fresh checkout's first Filters render reads it instead of running the probes (tens of
seconds on a busy 2-core machine). The folder is git-ignored: add the printed files with
``git add -f``. ``tests/test_filters_page.py`` fails when they are missing or stale (a new
checkpoint, new null tables or a new study format change the key).
"""

from __future__ import annotations

import sys

from tfcnn import interpret
from tfcnn.locations import checkpoints_dir

#: The shipped models whose temporal filters the Filters page studies.
STUDIED = ("synth-time", "synth-timefreq", "synth-timefreq-init")


def default_study_args() -> dict:
    """The arguments the Filters page passes for its default view (pages/5_Filters.py)."""
    tempi, name, _ = interpret.tempi_for(None)
    return {"tempi": tempi, "ranges_name": name, "functional": False}


def main() -> int:
    for stem in STUDIED:
        path = checkpoints_dir() / f"{stem}.safetensors"
        interpret.cached_study(path, **default_study_args())
        print(interpret.study_cache_path(path, **default_study_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
