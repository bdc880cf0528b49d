"""SynthBallroom scenarios: data sets in which the cue that separates the classes is known.

A scenario says, for each of three musical properties, whether it follows the class
(``"class"``), is drawn from one pool shared by all classes (``"shared"``), or comes from
another dance than the class, a different one for each property (``"other"``):

- **tempo**: the BPM distribution (a class's own Ballroom tempi, or all 698 pooled);
- **rhythm**: meter, rhythm pattern, swing, articulation and arrangement (the dance's own,
  or those of a 4/4 dance drawn at random, so the meter is 4/4 for every class);
- **timbre**: instrumentation (the dance's palette of sounds), its drum-bus level and a
  class-specific spectral envelope (a one-octave peaking EQ), or the shared sound pool.

and whether the labels are the audio's (``"audio"``) or a random permutation of them
(``"shuffled"``). Harmony (key, mode, progression) never follows the class outside ``paper``.

The registry :data:`SCENARIOS` holds ``paper`` (the calibrated default: every cue, tuned so
the architectures rank as in Pons et al. 2016, Table 1), ``tempo``, ``rhythm``, ``timbre``,
``shuffled`` (labels independent of the audio: every model must land at chance) and
``conflict`` (a test set, not a training set: each track plays one dance's tempo, a second
dance's meter and rhythm pattern and a third dance's sounds, each as strong as in ``paper``,
so a model trained on ``paper`` reveals which cue its prediction follows; the folder label is
the tempo's dance, and ``metadata.csv`` names all three per track).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from tfcnn.config import CLASSES
from tfcnn.datasets import DEFAULT_SYNTH_SCENARIO
from tfcnn.errors import ConfigError
from tfcnn.synth.dances import DANCES, DanceSpec, dance_spec
from tfcnn.synth.render import SYNTH_CONFIG, SynthConfig

#: ``timbre_of`` of a track whose sounds come from the pool shared by all classes.
SHARED = "shared"

#: Dances in 4/4: the shared rhythm pool (one meter for every class).
FOUR_FOUR: tuple[str, ...] = tuple(d for d in CLASSES if DANCES[d].beats_per_bar == 4)

#: Centre of each dance's spectral-envelope peak in the ``timbre`` scenario: 8 centres
#: 5/7 octave apart from 200 Hz to 6.4 kHz, assigned in an order unrelated to the palettes.
TIMBRE_EQ_HZ: dict[str, float] = {
    dance: round(200.0 * 2 ** (5 * k / 7), 1)
    for k, dance in enumerate(("Samba", "Waltz", "Jive", "Tango", "ChaChaCha",
                               "VienneseWaltz", "Rumba", "Quickstep"))
}

_AXIS_VALUES = ("class", "shared", "other")
#: The cues of the ``conflict`` scenario, in the order its metadata names their dances.
CUES: tuple[str, ...] = ("tempo", "rhythm", "timbre")
_LABEL_VALUES = ("audio", "shuffled")


@dataclass(frozen=True)
class Scenario:
    """Which cues follow the class in a generated data set.

    Attributes
    ----------
    name : str
    cue : str
        One line: what separates the classes.
    tempo, rhythm, timbre : {"class", "shared", "other"}
        See the module docstring (``"other"``: a dance other than the class, and other than
        the dances of the other ``"other"`` properties).
    labels : {"audio", "shuffled"}
        ``shuffled``: each track's label is a random permutation of the audio's dances
        (class sizes kept), so labels carry no information about the audio.
    typical_prob : float or None
        Override of :attr:`SynthConfig.typical_prob` (None keeps the default 0.8).
    eq_gain_db : float
        Gain of the class's spectral-envelope peak (:data:`TIMBRE_EQ_HZ`) when the timbre
        follows the class; 0 adds none.
    """

    name: str
    cue: str
    tempo: str
    rhythm: str
    timbre: str
    labels: str = "audio"
    typical_prob: float | None = None
    eq_gain_db: float = 0.0

    def __post_init__(self) -> None:
        for axis in ("tempo", "rhythm", "timbre"):
            if getattr(self, axis) not in _AXIS_VALUES:
                raise ConfigError(f"scenario {self.name}: {axis} must be one of "
                                  f"{_AXIS_VALUES}, got {getattr(self, axis)!r}")
        if self.labels not in _LABEL_VALUES:
            raise ConfigError(f"scenario {self.name}: labels must be one of {_LABEL_VALUES}, "
                              f"got {self.labels!r}")

    def config(self, base: SynthConfig = SYNTH_CONFIG) -> SynthConfig:
        """The generator's knobs under this scenario (``base`` with its overrides)."""
        if self.typical_prob is None:
            return base
        return replace(base, typical_prob=self.typical_prob)

    def knobs(self) -> dict:
        """The scenario as a JSON-ready dict (what ``scenario.json`` records)."""
        return asdict(self)


#: The registry of scenarios, in the order the app and the README show them.
SCENARIOS: dict[str, Scenario] = {
    "paper": Scenario(
        "paper", cue="tempo, meter, rhythm and partly timbre, calibrated so the architectures "
                     "rank as in the paper's Table 1",
        tempo="class", rhythm="class", timbre="class"),
    "tempo": Scenario(
        "tempo", cue="tempo only (each class its Ballroom tempo range; one meter, one pattern "
                     "pool, one sound pool)",
        tempo="class", rhythm="shared", timbre="shared"),
    "rhythm": Scenario(
        "rhythm", cue="meter and rhythm pattern only (one tempo distribution, one sound pool)",
        tempo="shared", rhythm="class", timbre="shared"),
    "timbre": Scenario(
        "timbre", cue="instrumentation and spectral envelope only (one tempo distribution, "
                      "one meter, one pattern pool)",
        tempo="shared", rhythm="shared", timbre="class", typical_prob=1.0, eq_gain_db=9.0),
    "shuffled": Scenario(
        "shuffled", cue="none: labels are a random permutation, independent of the audio",
        tempo="class", rhythm="class", timbre="class", labels="shuffled"),
    "conflict": Scenario(
        "conflict", cue="cues in conflict: one dance's tempo (the label), a second's meter and "
                        "rhythm pattern, a third's sounds (a test set for models trained on "
                        "paper)",
        tempo="class", rhythm="other", timbre="other"),
}

#: The default scenario (today's SynthBallroom; a folder without scenario.json is one).
DEFAULT_SCENARIO = DEFAULT_SYNTH_SCENARIO


def get_scenario(name: str) -> Scenario:
    """The registered scenario ``name``; an unknown name raises ConfigError listing the valid ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ConfigError(f"unknown scenario {name!r}; valid scenarios: "
                          f"{', '.join(SCENARIOS)}") from None


def scenario_dirname(name: str) -> str:
    """Folder name of a scenario's data set under a data root: ``synth-ballroom`` for
    ``paper`` (the default data set), ``synth-<name>`` otherwise."""
    return "synth-ballroom" if get_scenario(name).name == DEFAULT_SCENARIO else f"synth-{name}"


def scenario_from_knobs(knobs: dict) -> Scenario:
    """Rebuild a :class:`Scenario` from :meth:`Scenario.knobs` (e.g. read from scenario.json)."""
    names = {f.name for f in fields(Scenario)}
    return Scenario(**{k: v for k, v in knobs.items() if k in names})


def conflict_sources(dance: str, index: int) -> tuple[str, str]:
    """The rhythm's and the sounds' dances of track ``index`` of ``dance`` in ``conflict``.

    The 42 ordered pairs of two other dances, walked so that each run of 7 tracks takes every
    other dance once as the rhythm's and once as the sounds' source: the sources are
    balanced within every tempo class, and a model that ignores a cue matches it on 1/8 of
    the tracks.

    Returns
    -------
    (rhythm_of, timbre_of) : (str, str)
        Two dances, different from each other and from ``dance``.
    """
    d = CLASSES.index(dance)
    k = index % 42
    a = 1 + k % 7                   # the rhythm's offset from the class, 1..7
    c = 1 + (a + (k // 7) % 6) % 7  # the sounds' offset: 1..7, never a
    return CLASSES[(d + a) % 8], CLASSES[(d + c) % 8]


def track_spec(*, rhythm_of: str, timbre_of: str, eq_gain_db: float = 0.0) -> DanceSpec:
    """The spec a track is rendered with: one dance's rhythm with another's (or shared) sounds.

    Parameters
    ----------
    rhythm_of : str
        The dance whose meter, rhythm variants, swing, articulation and arrangement it plays.
    timbre_of : str
        The dance whose palette, drum level and spectral envelope it uses, or :data:`SHARED`.
    eq_gain_db : float
        Gain of the spectral-envelope peak at ``TIMBRE_EQ_HZ[timbre_of]``.

    Returns
    -------
    DanceSpec
        The registered spec itself when ``rhythm_of == timbre_of`` and no EQ (the ``paper``
        and ``shuffled`` tracks); otherwise a composed one whose key mode is drawn with the
        default probability (harmony independent of the class).
    """
    rhythm = dance_spec(rhythm_of)
    if timbre_of == rhythm_of and not eq_gain_db:
        return rhythm
    if timbre_of == SHARED:
        return replace(rhythm, palette={}, drum_gain_db=0.0,
                       minor_prob=DanceSpec.minor_prob, eq_gain_db=0.0)
    timbre = dance_spec(timbre_of)
    return replace(rhythm, palette=dict(timbre.palette), drum_gain_db=timbre.drum_gain_db,
                   minor_prob=DanceSpec.minor_prob, eq_hz=TIMBRE_EQ_HZ[timbre.name],
                   eq_gain_db=float(eq_gain_db))
