"""Write docs/cli.md from the CLI's own parsers: every command, its usage and every argument.

The argument tables come from ``python -m tfcnn``'s argparse parsers, so the page cannot
drift from the code; each command's short introduction and examples are kept here.
``tests/test_docs.py`` fails when docs/cli.md differs from what this writes.

    python -m scripts.cli_reference            # rewrite docs/cli.md
    python -m scripts.cli_reference --check    # exit 1 if docs/cli.md is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from tfcnn.__main__ import COMMANDS, build_parser

REPO = Path(__file__).resolve().parents[1]
CLI_PAGE = REPO / "docs" / "cli.md"

#: Per command: a few sentences and example lines (shown as a bash block).
INTROS: dict[str, tuple[str, tuple[str, ...]]] = {
    "synth": (
        "Generate a SynthBallroom data set ([lab.md](lab.md)). Deterministic; a rerun completes "
        "an interrupted set and leaves a complete one untouched.",
        ("python -m tfcnn synth data/synth-ballroom                      # what `make data` runs",
         "python -m tfcnn synth data/synth-tempo --scenario tempo --per-class 20 --seconds 15")),
    "download": (
        "Fetch the real Ballroom archive, verify its md5, unpack it atomically to "
        "`DIR/BallroomData` and check it against the shipped track table. `make ballroom` runs "
        "this and `features` ([real-data.md](real-data.md)).",
        ("python -m tfcnn download ballroom                               # to data/ballroom",
         "python -m tfcnn download ballroom --archive ~/Downloads/data1.tar.gz")),
    "features": (
        "Compute every track's 40-band log-mel once and cache it beside the data "
        "(`.tfcnn-cache/`; a user cache folder when the data folder is read-only). `train` and "
        "the app reuse it.",
        ("python -m tfcnn features data/ballroom --workers 2",
         "python -m tfcnn features data/synth-ballroom --prune           # also drop entries of "
         "changed or removed files")),
    "train": (
        "K-fold cross-validation of one architecture into one run folder (`config.json`, "
        "`progress.jsonl`, `fold-XX/model.safetensors` + `result.json`, `results.json`). "
        "Ctrl-C, a kill or a full disk lose at most one epoch: the same command plus `--resume` "
        "continues ([method.md](method.md#interrupted-runs-lose-at-most-one-epoch)).",
        ("python -m tfcnn train data/synth-ballroom --arch time --folds 3 --epochs 5 "
         "--out runs/first",
         "python -m tfcnn train data/synth-ballroom --arch time --folds 3 --epochs 5 "
         "--out runs/first --resume",
         "python -m tfcnn train data/ballroom --arch timefreq --preset paper --protocol paper "
         "--device cuda",
         "python -m tfcnn train data/synth-rhythm --arch time --patch-frames 160 "
         "--time-filter 1x120 --folds 5     # two bars at 100 BPM",
         "python -m tfcnn train data/synth-rhythm --arch time --frames-per-beat 10 --folds 5"
         "      # beat-synchronous: 8 beats per patch")),
    "sweep": (
        "A grid of patch widths × beat-synchronous inputs × filter shapes × numbers of filters "
        "× seeds, every grid point one K-fold "
        "cross-validation ending as an ordinary run folder under `--out`. Takes every `train` "
        "option, with lists for the swept ones ([sweeps.md](sweeps.md)).",
        ("python -m tfcnn sweep data/synth-tempo --arch time --time-filter 1x30,1x60,1x80 "
         "--seeds 0,1,2 --out runs/sweep-time",
         "python -m tfcnn sweep data/synth-rhythm --arch time --patch-frames 80,160 "
         "--frames-per-beat off,10 --seeds 0,1,2 --out runs/sweep-inputs",
         "python -m tfcnn sweep data/ballroom --arch time --time-filter 1x30,1x60 --engine ray "
         "--address HOST:6379 --out runs/sweep-ray")),
    "table": (
        "Table 1 of run folders beside the paper's.",
        ("python -m tfcnn table runs/first runs/bt-timefreq",)),
    "compare": (
        "Run A against run B over their folds: A − B with a 95 % interval (corrected resampled "
        "t), Wilcoxon p, equivalence within ±margin (TOST) and a verdict "
        "([statistics.md](statistics.md#comparing-two-runs)). A run is a run folder or a row "
        "of a Table 1 file, `FILE.json:ARCH`.",
        ("python -m tfcnn compare runs/a runs/b",
         "python -m tfcnn compare checkpoints/table1-synth.json:timefreq "
         "checkpoints/table1-synth.json:time --json")),
    "predict": (
        "The dance of each audio file: majority vote over its 1.86 s patches, calibrated "
        "confidence or \"unsure\" with the rule that decided it (each value beside its cutoff: "
        "confidence, beat strength, at least 2 patches), and the tempo estimate with the "
        "classes whose Ballroom range holds it "
        "([statistics.md](statistics.md#confidence-and-tempo-of-a-prediction)). The default "
        "model is the shipped Time-Frequency checkpoint, trained on SynthBallroom. Files of any "
        "length are decoded block by block.",
        ("python -m tfcnn predict song.mp3 other.flac",
         "python -m tfcnn predict song.wav --checkpoint runs/first/fold-00/model.safetensors "
         "--json")),
    "calibrate": (
        "Fit a checkpoint's temperature and its \"unsure\" thresholds on its fold's validation "
        "songs, rebuilt from the data set, folds and seed; refuses when the rebuilt test songs "
        "differ from those the checkpoint recorded "
        "([statistics.md](statistics.md#confidence-and-tempo-of-a-prediction)).",
        ("python -m tfcnn calibrate checkpoints/synth-timefreq.safetensors data/synth-ballroom "
         "--out /tmp/timefreq-calibrated.safetensors",)),
    "filters": (
        "The tempo study of a checkpoint's 1×n temporal filters: each filter's tempo interval "
        "and periodicity against noise as smooth as itself, probe responses, and the graded "
        "verdict ([tempo-study.md](tempo-study.md)).",
        ("python -m tfcnn filters checkpoints/synth-time.safetensors --tempi data/synth-ballroom",
         "python -m tfcnn filters runs/RUN --growth                        # a run trained with "
         "--snapshots 0,1,5,25",
         "python -m tfcnn filters checkpoints/synth-time.safetensors --stretch my-song.flac   "
         "# your track, time-stretched to each class tempo")),
}

HEADER = """# CLI reference

`python -m tfcnn COMMAND ...` (in the project's venv: `.venv/bin/python -m tfcnn`). Every
command has `--help`; this page lists the same arguments (written from the parsers by
`python -m scripts.cli_reference`). Bad input prints one `error: ...` line naming the file and
the problem and exits with code 2; Ctrl-C exits with 130.
"""


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _cell(text: str) -> str:
    """Help text as a Markdown table cell: argparse's %% unescaped, pipes escaped, the
    checkout's own folder written relative to it."""
    return text.replace("%%", "%").replace("|", "\\|").replace(f"{REPO}/", "")


def _argument_rows(sub: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            name = ", ".join(action.option_strings)
            if action.nargs != 0:
                name += " " + (action.metavar if isinstance(action.metavar, str)
                               else action.dest.upper())
        else:
            name = action.metavar if isinstance(action.metavar, str) else action.dest
        text = _cell(action.help or "")
        if action.choices and not action.option_strings:
            text += f" ({' / '.join(action.choices)})"
        if action.required and action.option_strings:
            text += " (required)"
        rows.append(f"| `{name}` | {text} |")
    return rows


def reference() -> str:
    """The text of docs/cli.md."""
    subs = _subparsers()
    lines = [HEADER, "| command | what it does |", "| --- | --- |"]
    lines += [f"| [`{name}`](#{name}) | {help_line} |" for name, help_line in COMMANDS.items()]
    for name in COMMANDS:
        intro, examples = INTROS.get(name, ("", ()))
        usage = re.sub(r"\s+", " ", subs[name].format_usage().replace("usage: ", "")).strip()
        lines += ["", f"## {name}", ""]
        if intro:
            lines += [intro, ""]
        if examples:
            lines += ["```bash", *examples, "```", ""]
        lines += [f"Usage: `{usage.replace(' [-h]', '')}`", "", "| argument | meaning |",
                  "| --- | --- |", *_argument_rows(subs[name])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.cli_reference",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare: exit 1 when docs/cli.md is out of date")
    args = parser.parse_args(argv)
    text = reference()
    if args.check:
        current = CLI_PAGE.read_text(encoding="utf-8") if CLI_PAGE.exists() else ""
        if current != text:
            print(f"{CLI_PAGE} is out of date: run python -m scripts.cli_reference",
                  file=sys.stderr)
            return 1
        return 0
    CLI_PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {CLI_PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
