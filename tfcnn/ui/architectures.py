"""The four architectures of the paper: the home page's table and diagram, and the filter
shape controls of the Train page (with the configured model's parameter count)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from tfcnn.config import CLASSES, LIMITS, PAPER_TABLE1, TIMEFREQ_INIT
from tfcnn.errors import ConfigError
from tfcnn.models import arch_param_names, build_model, count_parameters, resolve_arch_params
from tfcnn.request import ARCH_PARAMS, parse_filter_shape

#: What each architecture is (paper §1; the layers of :mod:`tfcnn.models`), for the home
#: page's table.
ARCH_LAYERS: dict[str, str] = {
    "blackbox": "conv 32×(12×8) → max-pool (4,1) → dropout → dense 200 → dropout → softmax",
    "timefreq": "[conv 32×(1×60) → max-pool (40,1)] ‖ [conv 32×(32×1) → max-pool (1,80)] "
                "→ dropout → dense 200 → dropout → softmax",
    "time": "conv 32×(1×60) → max-pool (40,1) → dropout → softmax",
    "frequency": "conv 32×(32×1) → max-pool (1,80) → dropout → softmax",
}

#: Graphviz picture of the Time-Frequency architecture (paper Figure 1).
TIMEFREQ_DOT = """digraph {
  rankdir=LR; node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontsize=11];
  input [label="log-mel patch\\n40 bands × 80 frames\\n(1.86 s)"];
  tconv [label="32 temporal filters\\n1×60 (≈1.4 s)", fillcolor="#fde7d4"];
  tpool [label="max-pool 40×1\\n(over all bands)", fillcolor="#fde7d4"];
  fconv [label="32 frequency filters\\n32×1", fillcolor="#dff0d8"];
  fpool [label="max-pool 1×80\\n(over all frames)", fillcolor="#dff0d8"];
  dense [label="dense 200\\n+ dropout 0.5"];
  out [label="softmax\\n8 dances"];
  input -> tconv -> tpool -> dense; input -> fconv -> fpool -> dense; dense -> out;
}"""


@st.cache_resource(show_spinner=False)
def parameter_counts(n_classes: int = len(CLASSES)) -> dict[str, int]:
    """``{arch: number of trainable parameters}`` of the four paper architectures."""
    return {arch: count_parameters(build_model(arch, n_classes)) for arch in PAPER_TABLE1}


def architecture_table() -> pd.DataFrame:
    """The four architectures: our parameter count, the paper's, and the layers."""
    counts = parameter_counts()
    return pd.DataFrame([
        {"architecture": arch, "#params": counts[arch], "paper #params": row.params,
         "paper accuracy (%)": f"{row.mean:.2f} ± {row.std:.2f}", "layers": ARCH_LAYERS[arch]}
        for arch, row in PAPER_TABLE1.items()
    ])


# ----------------------------------------------------------------------------- filter shapes

#: Largest value of each number control (:class:`tfcnn.config.Limits`).
_MAXIMA = {"n_filters": LIMITS.max_filters, "patch_frames": LIMITS.max_patch_frames}

#: Labels of the filter options a run request may set (:data:`tfcnn.request.ARCH_PARAMS`).
FILTER_LABELS: dict[str, str] = {
    "patch_frames": "Patch width (frames)",
    "time_filter": "Temporal filter (bands × frames)",
    "freq_filter": "Frequency filter (bands × frames)",
    "n_filters": "Filters per convolution",
}
FILTER_HELP: dict[str, str] = {
    "patch_frames": "Paper: 80 frames ≈ 1.86 s, less than a 4/4 bar below 129 BPM. 160 or 240 "
                    "let the model (and a filter as wide) see two or three bars at 100 BPM.",
    "time_filter": "Paper: 1x60 (60 frames ≈ 1.4 s, one beat at 60 BPM). At most 40 bands × "
                   "the patch's width (80 frames in the paper); e.g. 1x30 or 1x80, or 1x120 "
                   "with a 160-frame patch.",
    "freq_filter": "Paper: 32x1 (32 of the 40 bands, so a filter can slide in pitch).",
    "n_filters": "Paper: 32 in every convolution.",
}


@dataclass(frozen=True)
class FilterChoice:
    """The filter options chosen for one architecture.

    Attributes
    ----------
    arch : str
    arch_params : dict
        The options that differ from the paper's, as fields of a
        :class:`tfcnn.request.RunRequest` (``{"time_filter": (1, 30)}``); ``{}`` for the
        paper's model.
    n_params : int or None
        Trainable parameters of the configured model (None when a shape is refused).
    paper_params : int
        The paper's count for this architecture (Table 1).
    error : str or None
        Why the shape is refused (it does not fit the 40 × 80 patch, or is not HxW).
    """

    arch: str
    arch_params: dict = field(default_factory=dict)
    n_params: int | None = None
    paper_params: int = 0
    error: str | None = None


@st.cache_resource(show_spinner=False)
def _paper_params(arch: str) -> dict:
    """The arch's parameters as built with the paper's values (resolved, JSON types)."""
    return resolve_arch_params(arch)


@st.cache_data(show_spinner=False, max_entries=256)
def _count(arch: str, n_classes: int, params_json: str) -> int:
    """Trainable parameters of the real torch module with these options."""
    return count_parameters(build_model(arch, n_classes, **json.loads(params_json)))


def _shape_text(value) -> str:
    return "x".join(str(int(v)) for v in value)


def filter_controls(arch: str, *, n_classes: int = len(CLASSES), key: str = "train"
                    ) -> FilterChoice:
    """Inputs for the filter options ``arch`` takes, then its parameter count beside the
    paper's, or the reason a shape is refused; returns the :class:`FilterChoice`.

    Draws in the current container (the caller's sidebar or column); ``key`` prefixes the
    widget keys so two callers (launch, sweep) keep their own values.
    """
    paper = _paper_params(arch)
    row = PAPER_TABLE1.get("timefreq" if arch == TIMEFREQ_INIT else arch)
    paper_count = row.params if row is not None else _count(arch, n_classes, "{}")
    chosen, errors = {}, []
    for name in (p for p in ARCH_PARAMS if p in arch_param_names(arch)):
        # Streamlit forgets a widget's value while it is not drawn (another architecture
        # chosen); the last value is kept beside it so coming back restores it.
        kept = f"{key}-{name}-kept"
        if name in ("n_filters", "patch_frames"):
            chosen[name] = st.session_state[kept] = int(st.number_input(
                FILTER_LABELS[name], min_value=1, max_value=_MAXIMA[name],
                value=int(st.session_state.get(kept, paper[name])), key=f"{key}-{name}",
                help=FILTER_HELP[name]))
            continue
        text = st.session_state[kept] = st.text_input(
            FILTER_LABELS[name], value=st.session_state.get(kept, _shape_text(paper[name])),
            key=f"{key}-{name}", help=FILTER_HELP[name])
        try:
            chosen[name] = parse_filter_shape(text)
        except ConfigError as exc:
            errors.append(str(exc))
    n_params = None
    if not errors:
        try:
            n_params = _count(arch, n_classes, json.dumps(chosen))
        except ConfigError as exc:
            errors.append(str(exc))
    changed = {k: v for k, v in chosen.items()
               if json.loads(json.dumps(v)) != paper.get(k)}
    choice = FilterChoice(arch=arch, arch_params=changed, n_params=n_params,
                          paper_params=paper_count, error="; ".join(errors) or None)
    if choice.error:
        st.error(f"Refused: {choice.error}")
    else:
        st.caption(f"**{n_params:,}** trainable parameters · the paper's {arch}: "
                   f"{paper_count:,}")
    return choice


# ----------------------------------------------------------------------------- input


def frames_per_beat_control(*, key: str = "train") -> int | None:
    """The beat-synchronous input's control: frames per beat, 0 for the paper's frames;
    returns the request's ``frames_per_beat`` (None: off)."""
    value = int(st.number_input(
        "Beat-synchronous input (frames per beat, 0 = off)", min_value=0,
        max_value=LIMITS.max_frames_per_beat, value=0, key=f"{key}-frames-per-beat",
        help="0 (paper): patches of the log-mel's frames. N: each track's log-mel resampled so "
             "one beat of its estimated tempo spans N frames, in training and prediction "
             "alike; 10 puts 8 beats in an 80-frame patch at any tempo."))
    return value or None
