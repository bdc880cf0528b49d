"""Do the 1×60 temporal filters learn tempo? (Pons, Lidy & Serra 2016, §3, open question).

The study, one module per part:

* :mod:`~tfcnn.interpret.periodicity`: each filter's dominant tempo, its interval and its
  periodicity strength (statistics of the weights);
* :mod:`~tfcnn.interpret.periodic_lrt`: the filter test, a likelihood ratio of a periodic
  pattern against smooth noise (each averaged over its family) with simulated null tables, and the bank-level test;
* :mod:`~tfcnn.interpret.planted`: filters of known truth (smooth noises, planted periods);
* :mod:`~tfcnn.interpret.smooth_null`: the surrogate test for filters of other shapes, and
  Benjamini-Hochberg FDR control over filters;
* :mod:`~tfcnn.interpret.functional`: what the model does with tempo (probe → class,
  tempo counterfactual, filter ablation);
* :mod:`~tfcnn.interpret.baseline`: untrained filters of the same shape (a description);
* :mod:`~tfcnn.interpret.probes`: 4/4 click and drum probes and 3/4 waltz probes through the
  model (tuning curves, the tempo → class map);
* :mod:`~tfcnn.interpret.tempi`: class tempo ranges and interval matching;
* :mod:`~tfcnn.interpret.study`: the per-filter table and the graded verdict, as numbers;
* :mod:`~tfcnn.interpret.report`: words and readable tables for them;
* :mod:`~tfcnn.interpret.cache`, :mod:`~tfcnn.interpret.growth`: the study on disk per
  checkpoint, and across a run's training snapshots;
* :mod:`~tfcnn.interpret.plots`: plotly figures.

The names below are the public entry points, re-exported for ``from tfcnn import interpret``.
"""

from tfcnn.interpret.baseline import N_BASELINE_MODELS, RandomBaseline, random_baseline
from tfcnn.interpret.cache import cached_study, study_cache_path
from tfcnn.interpret.functional import (Ablation, Counterfactual, FunctionalEvidence,
                                        ProbeClassTest, probe_class_test)
from tfcnn.interpret.growth import growth_table
from tfcnn.interpret.periodic_lrt import PeriodicTest, PowerCurve, periodic_test, power_curve
from tfcnn.interpret.periodicity import (BPM_STEP, DEFAULT_FRAME_RATE_HZ, OCTAVE_TOLERANCE,
                                         FilterTempo, filter_tempi, filter_tempo,
                                         lag1_correlation, periodicity_map)
from tfcnn.interpret.probes import (PROBE_BPMS, PROBE_KINDS, PROBE_SECONDS, Probes,
                                    dataset_class_activations, probe_class_activations,
                                    probe_patches, probe_sweep, tuned_filters)
from tfcnn.interpret.smooth_null import (FDR_Q, N_SURROGATES, benjamini_hochberg,
                                         smooth_null_pvalues)
from tfcnn.interpret.study import (TABLE_COLUMNS, Statement, TempoStudy, Verdict,
                                   checkpoint_filters, compute_verdict, filter_table,
                                   tempo_study)
from tfcnn.interpret.tempi import (class_tempi, class_tempo_ranges, classes_at,
                                   classes_overlapping, overlap_chance, tempi_for,
                                   tempo_class_agreement)

__all__ = [
    "Ablation", "Counterfactual", "FunctionalEvidence", "PeriodicTest", "PowerCurve",
    "ProbeClassTest", "periodic_test", "power_curve", "probe_class_test",
    "BPM_STEP", "DEFAULT_FRAME_RATE_HZ", "FDR_Q", "N_BASELINE_MODELS", "N_SURROGATES",
    "OCTAVE_TOLERANCE", "PROBE_BPMS", "PROBE_KINDS", "PROBE_SECONDS", "TABLE_COLUMNS",
    "FilterTempo", "Probes", "RandomBaseline", "Statement", "TempoStudy", "Verdict",
    "benjamini_hochberg", "cached_study", "checkpoint_filters", "class_tempi",
    "class_tempo_ranges", "classes_at", "classes_overlapping", "compute_verdict",
    "dataset_class_activations", "filter_table", "filter_tempi", "filter_tempo",
    "growth_table", "lag1_correlation", "overlap_chance", "periodicity_map",
    "probe_class_activations", "probe_patches", "probe_sweep", "random_baseline",
    "smooth_null_pvalues", "study_cache_path", "tempi_for", "tempo_class_agreement",
    "tempo_study",
    "tuned_filters",
]
