"""The 8 Ballroom dances as data: meter, characteristic rhythms, typical instruments.

Rhythms are written one bar (or two) per string on a 16th-note grid (4 steps per beat):
``X`` accent (1.0), ``x`` normal (0.7), ``o`` ghost (0.4), ``.`` rest. A 4/4 bar has 16
steps, a 3/4 bar 12. Roles: ``kick``, ``snare``, ``hat``, ``perc`` (drums), ``bass`` and
``comp`` (chord comping). Each dance lists a few variants; a track picks one and mutates it.

The rhythm, tempo and meter are what a temporal model can learn (Pons et al. 2016, §1: the
Time branch). Each dance also has a palette of typical sounds, which overlap between dances
and are used only part of the time (``SynthConfig.typical_prob``), so that spectral cues
alone, as in the paper's Frequency model, stay far above chance yet far from perfect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from tfcnn.config import CLASSES
from tfcnn.errors import ConfigError
from tfcnn.synth import instruments as ins

#: 16th-note grid: every rhythm string has 4 steps per beat.
STEPS_PER_BEAT = 4

#: Velocity of each pattern symbol.
SYMBOLS: dict[str, float] = {"X": 1.0, "x": 0.7, "o": 0.4, ".": 0.0}

DRUM_ROLES = ("kick", "snare", "hat", "perc")
TONAL_ROLES = ("bass", "comp")
ROLES = DRUM_ROLES + TONAL_ROLES

#: Which sounds each palette part may name (the shared pools of :mod:`instruments`).
PALETTE_POOLS: dict[str, tuple[str, ...]] = {
    **ins.DRUM_ROLES, "bass": tuple(ins.BASS_VOICES), "comp": tuple(ins.VOICES),
    "lead": tuple(ins.VOICES),
}

#: The real Ballroom per-track table (tempo, meter), shipped as package data.
BALLROOM_TABLE = Path(__file__).resolve().parent.parent / "data" / "ballroom_tracks.csv"


def parse_rhythm(text: str) -> np.ndarray:
    """Velocities of a rhythm string, shape (len(text),), float."""
    try:
        return np.array([SYMBOLS[c] for c in text], dtype=float)
    except KeyError as exc:
        raise ConfigError(f"rhythm {text!r}: unknown symbol {exc.args[0]!r}; "
                          f"valid symbols: {''.join(SYMBOLS)}") from None


@dataclass(frozen=True)
class DanceSpec:
    """One dance: meter, rhythm variants, articulation and its typical sounds.

    Attributes
    ----------
    beats_per_bar : int
        3 for the waltzes, 4 otherwise (the Ballroom annotations).
    variants : tuple of dict
        Rhythm per role (strings of ``beats_per_bar * 4`` or twice that many steps).
    swing : (float, float)
        Range of the position of the off-beat 8th within the beat (0.5 straight, 0.67 triplet).
    comp_beats, bass_beats : (float, float)
        Range of note lengths in beats (tango's staccato is short, the waltz's legato long).
    palette : dict
        The dance's typical sounds per part (``kick``, ``snare``, ``hat``, ``perc``, ``bass``,
        ``comp``, ``lead``): with probability ``SynthConfig.typical_prob`` a part plays one of
        these, otherwise any sound of the shared pool (a bandoneon-like reed in tango,
        strings in the waltzes, a samba batucada...). These are the only spectral cues tied
        to the dance, apart from what tempo and rhythm leave in the spectrum.
    drum_gain_db : float
        Offset of the drum bus (heavier percussion in samba, lighter drums in the waltzes),
        scaled by ``SynthConfig.typical_prob``.
    role_presence : dict
        Probability that a role plays at all in a track (default 1 for kick/bass/comp).
    minor_prob : float
        Probability of a minor key.
    eq_hz, eq_gain_db : float
        A peaking EQ on the mix at ``eq_hz`` (one octave wide) by ``eq_gain_db``: a spectral
        envelope tied to the class. 0 dB (every registered dance) leaves the mix untouched;
        the ``timbre`` scenario sets it (:mod:`tfcnn.synth.scenarios`).
    """

    name: str
    beats_per_bar: int
    variants: tuple[dict[str, str], ...]
    swing: tuple[float, float] = (0.5, 0.5)
    comp_beats: tuple[float, float] = (0.4, 1.0)
    bass_beats: tuple[float, float] = (0.5, 1.0)
    palette: dict[str, tuple[str, ...]] = field(default_factory=dict)
    drum_gain_db: float = 0.0
    role_presence: dict[str, float] = field(default_factory=dict)
    minor_prob: float = 0.35
    eq_hz: float = 1000.0
    eq_gain_db: float = 0.0

    def __post_init__(self) -> None:
        bar = self.beats_per_bar * STEPS_PER_BEAT
        for variant in self.variants:
            for role, text in variant.items():
                if role not in ROLES:
                    raise ConfigError(f"{self.name}: unknown role {role!r}; valid: {ROLES}")
                if len(text) not in (bar, 2 * bar):
                    raise ConfigError(f"{self.name}.{role}: rhythm {text!r} has {len(text)} "
                                      f"steps, expected {bar} or {2 * bar}")
                parse_rhythm(text)
        for part, names in self.palette.items():
            pool = PALETTE_POOLS.get(part)
            if pool is None:
                raise ConfigError(f"{self.name}: unknown palette part {part!r}; "
                                  f"valid: {', '.join(PALETTE_POOLS)}")
            unknown = [n for n in names if n not in pool]
            if unknown:
                raise ConfigError(f"{self.name}.{part}: unknown sound(s) {unknown}; "
                                  f"valid: {', '.join(pool)}")
        if not 20.0 <= self.eq_hz <= 16000.0:
            raise ConfigError(f"{self.name}: eq_hz must be within 20..16000 Hz, got {self.eq_hz}")

    @property
    def bar_steps(self) -> int:
        return self.beats_per_bar * STEPS_PER_BEAT


#: The registry of dances, in the order of :data:`tfcnn.config.CLASSES`.
DANCES: dict[str, DanceSpec] = {
    # Cha-cha-cha: the "cha-cha-cha" on 4-and-1; cowbell quarters, güiro long-short-short.
    "ChaChaCha": DanceSpec(
        name="ChaChaCha", beats_per_bar=4,
        variants=(
            dict(kick="X.......X.......", snare="............x.x.", hat="x.x.x.x.x.x.x.x.",
                 perc="X...x...X...x...", bass="X.......x...x.x.", comp="X...........x.x."),
            dict(kick="X.......X.......", snare="....x.......x.x.", hat="X...x.x.X...x.x.",
                 perc="X...x...X...x...", bass="X.....x.x...x.x.", comp="..x...x...x.x.x."),
            dict(kick="X...x...X...x...", snare="............X.X.", hat="x.xxx.xxx.xxx.xx",
                 perc="x.x.x.x.x.x.x.x.", bass="X.......X...x.x.", comp="x...x...x...x.x."),
        ),
        palette=dict(kick=("kick",), snare=("rim", "snare"), hat=("guiro", "shaker"),
                     perc=("cowbell",), bass=("electric", "synthbass"),
                     comp=("piano", "brass", "synth"), lead=("brass", "flute", "synth")),
    ),
    # Jive: swung 8ths and a hard backbeat on 2 and 4.
    "Jive": DanceSpec(
        name="Jive", beats_per_bar=4, swing=(0.6, 0.7),
        variants=(
            dict(kick="X.......X.......", snare="....X.......X...", hat="x.x.x.x.x.x.x.x.",
                 bass="X...x...X...x...", comp="....x.x.....x.x."),
            dict(kick="X.....x.X.......", snare="....X.......X...", hat="X.x.x.x.X.x.x.x.",
                 perc="....x.......x...", bass="X...x...X...x...", comp="x.x.x.x.x.x.x.x."),
            dict(kick="X.......X.x.....", snare="....X.......X..o", hat="x...x.x.x...x.x.",
                 bass="X.x.x.x.X.x.x.x.", comp="....X.......X..."),
        ),
        palette=dict(kick=("kick",), snare=("snare", "clap"), hat=("ride", "hat"),
                     perc=("rim",), bass=("upright", "electric"),
                     comp=("piano", "guitar", "organ"), lead=("brass", "synth")),
    ),
    # Quickstep: a fast two-beat (bass on 1 and 3, chord on 2 and 4), light swing.
    "Quickstep": DanceSpec(
        name="Quickstep", beats_per_bar=4, swing=(0.5, 0.62),
        variants=(
            dict(kick="X.......X.......", snare="....x.......x...", hat="x...x...x...x...",
                 bass="X.......x.......", comp="....x.......x..."),
            dict(kick="X...x...X...x...", snare="....X.......X...", hat="x.x.x.x.x.x.x.x.",
                 bass="X...x...X...x...", comp="....x.......x..."),
            dict(kick="X.......X.......", snare="....x.......x...", hat="x.xxx.xxx.xxx.xx",
                 perc="X.......x.......", bass="X.......x.......", comp="X...x...x...x..."),
        ),
        palette=dict(kick=("kick",), snare=("snare",), hat=("hat", "ride"),
                     perc=("woodblock",), bass=("upright", "tuba"),
                     comp=("brass", "piano"), lead=("brass", "flute")),
    ),
    # Rumba: slow, with the clave (rumba or son, one-bar form) and an anticipated bass.
    "Rumba": DanceSpec(
        name="Rumba", beats_per_bar=4, comp_beats=(0.5, 1.5),
        variants=(
            dict(kick="X.......x.......", snare="......x.....x.xx", hat="x.x.x.x.x.x.x.x.",
                 perc="x..x...x..x.x...", bass="......X.....x...", comp="..x..x..x...x..."),
            dict(kick="X.......X.......", snare="......o.....x.x.", hat="x.x.x.x.x.x.x.x.",
                 perc="x..x..x...x.x...", bass="X.....x.X.......", comp="x..x..x...x.x..."),
            dict(kick="X.....x.X.......", snare="........x..x..x.", hat="xoxoxoxoxoxoxoxo",
                 perc="x..x...x..x.x...", bass="X..x....X.......", comp="....x.......x..."),
        ),
        palette=dict(kick=("conga", "kick"), snare=("conga", "rim"), hat=("shaker",),
                     perc=("clave",), bass=("electric", "upright"),
                     comp=("guitar", "epiano", "strings"), lead=("flute", "vibes", "epiano")),
    ),
    # Samba: surdo answering on the second beat of each 2/4 bar, busy 16ths (ganzá) with the
    # accent on the last 16th, syncopated tamborim.
    "Samba": DanceSpec(
        name="Samba", beats_per_bar=4,
        variants=(
            dict(kick="o...X...o...X...", snare="x.x.x.xx.xx.x.x.", hat="oxoXoxoXoxoXoxoX",
                 perc="X.x.X..xX.x.X..x", bass="X..xX..xX..xX..x", comp="x.xx.x.xx.xx.x.x"),
            dict(kick="x...X..xx...X..x", snare="..x...x...x..xx.", hat="xooxxooxxooxxoox",
                 perc="x.x..x.xx.x..x.x", bass="X..xX..xX..xX..x", comp="x..x..x.x..x..x."),
            dict(kick="o...X...o...X...", snare="x.xx.xx.x.xx.xx.", hat="xxxXxxxXxxxXxxxX",
                 bass="X...X...X...X..x", comp="..x...x...x...x."),
        ),
        palette=dict(kick=("surdo",), snare=("tamborim",), hat=("shaker",),
                     perc=("cowbell", "tamborim"), bass=("electric", "synthbass"),
                     comp=("guitar", "brass"), lead=("brass", "flute")),
        drum_gain_db=3.0,
    ),
    # Tango: staccato marcato on every beat (or the 3-3-2 síncopa), reed-heavy, light drums.
    "Tango": DanceSpec(
        name="Tango", beats_per_bar=4, comp_beats=(0.15, 0.4), bass_beats=(0.15, 0.4),
        variants=(
            dict(kick="X...x...X...x...", snare="X...X...X...X...", hat="................",
                 bass="X...X...X...X...", comp="X...X...X...X..."),
            dict(kick="X.....x.....x...", snare="......x.....X.x.", hat="x...x...x...x...",
                 bass="X.....X.....X...", comp="X.....X.....X.x."),
            dict(kick="X.......X.......", snare="....X.......XxxX", hat="x.x.x.x.x.x.x.x.",
                 bass="X...X...X...X...", comp="X...X...X..xX..."),
        ),
        palette=dict(kick=("kick",), snare=("snare", "rim"), hat=("hat",),
                     perc=("woodblock",), bass=("upright",),
                     comp=("reed",), lead=("reed", "strings")),
        role_presence={"hat": 0.5, "perc": 0.2},
        minor_prob=0.6,
    ),
    # Viennese waltz: fast oom-pah-pah in 3/4.
    "VienneseWaltz": DanceSpec(
        name="VienneseWaltz", beats_per_bar=3, comp_beats=(0.5, 0.9), bass_beats=(0.8, 2.0),
        variants=(
            dict(kick="X...........", snare="....x...x...", hat="x...x...x...",
                 bass="X...........", comp="....x...x..."),
            dict(kick="X...........", snare="....o...o...", hat="x.x.x.x.x.x.",
                 bass="X.......x...", comp="....X...x..."),
        ),
        palette=dict(kick=("kick", "surdo"), snare=("snare",), hat=("ride", "hat"),
                     perc=("woodblock",), bass=("tuba", "upright"),
                     comp=("strings", "organ"), lead=("strings", "flute")),
        drum_gain_db=-4.0,
        role_presence={"perc": 0.2},
    ),
    # Slow waltz: the same oom-pah-pah, half as fast, more legato.
    "Waltz": DanceSpec(
        name="Waltz", beats_per_bar=3, comp_beats=(0.7, 1.6), bass_beats=(1.0, 2.5),
        variants=(
            dict(kick="X...........", snare="....o...o...", hat="x.x.x.x.x.x.",
                 bass="X...........", comp="....x...x..."),
            dict(kick="X...........", snare="............", hat="x...x...x...",
                 bass="X.......x...", comp="X...x...x..."),
        ),
        palette=dict(kick=("kick",), snare=("snare", "rim"), hat=("hat", "ride"),
                     perc=("woodblock",), bass=("upright",),
                     comp=("strings", "piano", "vibes"), lead=("strings", "flute", "piano")),
        drum_gain_db=-6.0,
        role_presence={"perc": 0.2, "snare": 0.6},
    ),
}

assert tuple(DANCES) == CLASSES, "DANCES must follow tfcnn.config.CLASSES"


def dance_spec(name: str) -> DanceSpec:
    """The registered dance ``name``; an unknown name raises ConfigError listing valid ones."""
    try:
        return DANCES[name]
    except KeyError:
        raise ConfigError(f"unknown dance {name!r}; valid dances: {', '.join(DANCES)}") from None


@lru_cache(maxsize=1)
def real_tempi() -> dict[str, np.ndarray]:
    """Per-dance BPMs of the real Ballroom tracks (the shipped track table).

    Returns
    -------
    dict
        ``{dance: np.ndarray (n_tracks,) of BPM}`` for each of the 8 dances.
    """
    table = pd.read_csv(BALLROOM_TABLE)
    return {d: np.sort(table.loc[table["dance"] == d, "bpm"].to_numpy(float)) for d in DANCES}


def tempo_range(dance: str) -> tuple[float, float]:
    """The real (min, max) BPM of ``dance`` in Ballroom."""
    bpms = real_tempi()[dance_spec(dance).name]
    return float(bpms[0]), float(bpms[-1])
