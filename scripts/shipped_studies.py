"""The Filters page's default tempo study of each shipped model, written beside it.

``python -m scripts.shipped_studies`` (``make studies``): for ``checkpoints/synth-time`` and
``synth-timefreq``, the study the Filters page opens with (real Ballroom tempi, no
counterfactual), and the one its "Ask the model" toggle opens (counterfactual and ablation,
about a minute), are computed once and kept in ``checkpoints/.tfcnn-cache/studies/``, so a
fresh checkout's Filters page reads them instead of running the probes and renders. The folder is git-ignored: add the printed files with
``git add -f``. ``tests/test_filters_page.py`` fails when they are missing or stale (a new
checkpoint, new null tables or a new study format change the key).
"""

from __future__ import annotations

import sys

from tfcnn import interpret
from tfcnn.locations import checkpoints_dir

#: The shipped models whose temporal filters the Filters page studies.
STUDIED = ("synth-time", "synth-timefreq", "synth-timefreq-init")


def default_study_args(functional: bool = False) -> dict:
    """The arguments the Filters page passes for its default view (pages/5_Filters.py), and
    with ``functional`` for its "Ask the model" toggle."""
    tempi, name, _ = interpret.tempi_for(None)
    return {"tempi": tempi, "ranges_name": name, "functional": functional}


def main() -> int:
    for stem in STUDIED:
        path = checkpoints_dir() / f"{stem}.safetensors"
        for functional in (False, True):  # the toggle answers at once for shipped models
            args = default_study_args(functional)
            interpret.cached_study(path, **args)
            print(interpret.study_cache_path(path, **args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
