"""``python -m tfcnn predict AUDIO... [--checkpoint P] [--json]``: classify audio files.

Per file: the class chosen by the song vote, the mean probability of every class, the
calibrated confidence with the unsure flag and the rule that decided it (each value beside its
cutoff), and the estimated tempo with its beat strength and the classes whose tempo range holds
it. A file
that fails prints one ``error: <file>: problem`` line on stderr; the others are still
processed and the exit code is 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from tfcnn.errors import TfcnnError
from tfcnn.paths import display


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict the dance class of audio files",
        description="Predict the class of each audio file (majority vote over 1.86 s patches). "
                    "Default model: the shipped checkpoint trained on synthetic data.",
    )
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files (WAV/FLAC/OGG/MP3)")
    p.add_argument("--checkpoint", metavar="P",
                   help="model file (.safetensors); default checkpoints/synth-<arch>.safetensors")
    p.add_argument("--arch", default="timefreq",
                   help="which shipped checkpoint to use without --checkpoint (default timefreq)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")
    p.set_defaults(run=run)


def _format(result, model: str) -> str:
    """A classified song (:class:`tfcnn.assessment.Classification`) as text; ``model`` says
    what the model was trained on."""
    pred, assessment = result.prediction, result.assessment
    tempo, match = assessment.tempo, assessment.tempo_match
    lines = [f"{pred.path}: {pred.prediction}  ({pred.n_patches} patches of "
             f"{pred.patch_seconds:.2f} s)", f"  model: {model}",
             f"  {assessment.status}: {assessment.why()}",
             f"  rule: {assessment.rule()}",
             f"  tempo ≈ {tempo.bpm:.1f} BPM, beat strength {tempo.strength:.2f}: "
             f"{match.text()} ({match.rule()})",
             f"    {'class':<16s} {'mean':>7s} {'calibrated':>10s}"]
    for name, p, q in zip(pred.classes, pred.probabilities, assessment.probabilities):
        mark = "*" if name == pred.prediction else " "
        lines.append(f"  {mark} {name:<16s} {p:7.4f} {q:10.4f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    # torch and the model stack load only when the command runs: `--help` stays fast.
    from tfcnn.assessment import classify
    from tfcnn.checkpoint import describe_provenance, load_checkpoint
    from tfcnn.device import select_device
    from tfcnn.inference import default_checkpoint

    device = args.device
    if device == "auto":
        device = select_device("auto")
    # A broken checkpoint fails every file: raise, and __main__ prints one error line.
    ckpt = load_checkpoint(args.checkpoint or default_checkpoint(args.arch), device=device)

    results, failed = [], 0
    for path in args.audio:
        try:
            result = classify(path, ckpt, device=device)
        except TfcnnError as exc:
            failed += 1
            message = str(exc)
            if not message.startswith(display(path)):
                message = f"{display(path)}: {message}"
            print(f"error: {message}", file=sys.stderr, flush=True)
            continue
        if args.json:
            results.append(result.to_dict())
        else:
            print(_format(result, describe_provenance(result.prediction.model)), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 2 if failed else 0
