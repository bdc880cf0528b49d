"""SynthBallroom: the embedded default data set (a deterministic Ballroom look-alike).

Eight dances with Ballroom's real per-dance tempo distributions, meters and characteristic
rhythms, played by drums and simple tonal parts whose timbre is drawn mostly independently
of the dance. Exact tempo and meter per track make it a controlled benchmark for the tempo
study of the Time filters (Pons et al. 2016, §3).

``generate`` writes a data set of one scenario (:data:`SCENARIOS`: which cue separates the
classes); ``render_track`` renders one track; ``render_click_track``, ``render_drum_loop``
(4/4) and ``render_waltz_loop`` (3/4) are tempo probes.
"""

#: What SynthBallroom's Table 1 can and cannot show; the app states it beside every result on
#: this data set (the README says the same).
WHAT_SYNTH_SHOWS = (
    "SynthBallroom is designed: its default settings were calibrated so that a spectral-only "
    "proxy scores about 50 % and a proxy with temporal context about 86 %, as the paper's "
    "Frequency and Time models on Ballroom. Its Table 1 therefore confirms the design of the "
    "data, not the paper's claim. It can show that the pipeline trains, that each "
    "architecture can use the cue it was built for, and (with its exact tempo and meter per "
    "track) where temporal filters sit; it cannot show how the architectures rank on real "
    "music. For that, train on the real Ballroom data set."
)

from tfcnn.synth.dances import DANCES, DanceSpec, dance_spec, real_tempi, tempo_range
from tfcnn.synth.generate import METADATA, METADATA_COLUMNS, generate, track_plan
from tfcnn.synth.render import (BPM_LIMITS, SYNTH_CONFIG, SynthConfig, render_click_track,
                                render_drum_loop, render_track, render_waltz_loop)
from tfcnn.synth.scenarios import SCENARIOS, Scenario, get_scenario

__all__ = [
    "WHAT_SYNTH_SHOWS", "BPM_LIMITS", "DANCES", "DanceSpec", "METADATA", "METADATA_COLUMNS",
    "SCENARIOS", "SYNTH_CONFIG", "Scenario", "SynthConfig", "dance_spec", "generate",
    "get_scenario", "real_tempi", "render_click_track", "render_drum_loop", "render_track",
    "render_waltz_loop", "tempo_range", "track_plan",
]
