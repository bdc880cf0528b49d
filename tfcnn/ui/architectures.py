"""The four architectures of the paper as the home page shows them: a table and a diagram."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tfcnn.config import CLASSES, PAPER_TABLE1
from tfcnn.models import build_model, count_parameters

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
