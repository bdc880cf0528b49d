"""Calibration of the shipped models measured on their test songs: expected calibration error
with a bootstrap interval and the reliability diagram, written to
``checkpoints/reliability-synth.json`` (read by the Results and Predict pages).

The shipped Table 1 (``checkpoints/table1-synth.json``) holds per-fold accuracies, confusion
matrices and song counts, but no per-song probabilities, and only each architecture's fold-0
model is shipped (``checkpoints/synth-<arch>.safetensors``). So the shipped rows are measured
on that model's own 48 test songs: the fold's split is rebuilt from the data set and checked
against the test songs the checkpoint recorded (:func:`tfcnn.recalibrate.measure_checkpoint`).
Runs trained with this version store every test song's confidence and a pooled measurement
over all folds in ``results.json``.

    python -m scripts.shipped_reliability --data data/synth-ballroom
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfcnn.atomic import write_json_atomic
from tfcnn.checkpoint import load_checkpoint
from tfcnn.errors import TfcnnError
from tfcnn.locations import CHECKPOINTS_DIR, DEFAULT_DATA_DIR, SHIPPED_RELIABILITY
from tfcnn.recalibrate import measure_checkpoint


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.shipped_reliability",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="the shipped models' data set")
    p.add_argument("--checkpoints", default=str(CHECKPOINTS_DIR))
    p.add_argument("--out", default=None, help=f"default: CHECKPOINTS/{SHIPPED_RELIABILITY}")
    args = p.parse_args(argv)
    folder = Path(args.checkpoints)
    models = {}
    try:
        for path in sorted(folder.glob("synth-*.safetensors")):
            rel = measure_checkpoint(path, args.data)
            ckpt = load_checkpoint(path)
            models[path.stem] = {"file": path.name, "arch": ckpt.arch,
                                 "fold": ckpt.extra.get("fold"), **rel.to_dict()}
            print(f"{path.stem}: {rel.sentence()}")
    except TfcnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_json_atomic(Path(args.out) if args.out else folder / SHIPPED_RELIABILITY, {
        "data": str(args.data),
        "note": "Song-level calibration of each shipped model on its own fold's test songs "
                "(the confidence the Predict page shows: the calibrated song probability of "
                "the predicted class). table1-synth.json has no per-song probabilities and "
                "only the fold-0 models are shipped, so the other nine folds are not measured.",
        "command": "python -m scripts.shipped_reliability --data " + str(args.data),
        "models": models})
    return 0


if __name__ == "__main__":
    sys.exit(main())
