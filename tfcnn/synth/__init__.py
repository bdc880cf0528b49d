"""SynthBallroom: the embedded default data set (a deterministic Ballroom look-alike).

Eight dances with Ballroom's real per-dance tempo distributions, meters and characteristic
rhythms, played by drums and simple tonal parts whose timbre is drawn mostly independently
of the dance. Exact tempo and meter per track make it a controlled benchmark for the tempo
study of the Time filters (Pons et al. 2016, §3).

``generate`` writes a data set of one scenario (:data:`SCENARIOS`: which cue separates the
classes); ``render_track`` renders one track; ``render_click_track`` and
``render_drum_loop`` are tempo probes.
"""

from tfcnn.synth.dances import DANCES, DanceSpec, dance_spec, real_tempi, tempo_range
from tfcnn.synth.generate import METADATA, METADATA_COLUMNS, generate, track_plan
from tfcnn.synth.render import (BPM_LIMITS, SYNTH_CONFIG, SynthConfig, render_click_track,
                                render_drum_loop, render_track)
from tfcnn.synth.scenarios import SCENARIOS, Scenario, get_scenario

__all__ = [
    "BPM_LIMITS", "DANCES", "DanceSpec", "METADATA", "METADATA_COLUMNS", "SCENARIOS",
    "SYNTH_CONFIG", "Scenario", "SynthConfig", "get_scenario", "dance_spec", "generate", "real_tempi", "render_click_track",
    "render_drum_loop", "render_track", "tempo_range", "track_plan",
]
