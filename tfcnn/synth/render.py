"""Render one SynthBallroom track, and the tempo-study probes (click track, drum loop).

A track is: a dance's rhythm (possibly mutated, partly borrowed from another dance) on a
16th grid at an exact tempo, played by drums and simple tonal parts (bass, chord comping,
sometimes a melody) whose sounds are drawn per track from shared pools; then reverb, noise
and a random master EQ / gain. Each instrument's one-shot is rendered once per track and
added at its onsets, so a 30 s track costs about 0.1 CPU-second.

All difficulty knobs live in :class:`SynthConfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tfcnn.config import FRONT_END
from tfcnn.errors import ConfigError
from tfcnn.synth import instruments as ins
from tfcnn.synth.dances import (DANCES, DRUM_ROLES, STEPS_PER_BEAT, DanceSpec, dance_spec,
                                parse_rhythm)

#: Valid tempo range of the renderer (wider than Ballroom's 60-224 BPM, paper §3).
BPM_LIMITS: tuple[float, float] = (30.0, 300.0)


@dataclass(frozen=True)
class SynthConfig:
    """The difficulty knobs of SynthBallroom, in one place.

    The defaults were calibrated (30 tracks per dance, 30 s, 5-fold logistic regression)
    so that a spectral-only proxy (per-band time mean and max of the log-mel, as the
    Frequency model's time max-pool) lands at ~50 %, far above chance (12.5 %) but far
    below a proxy with temporal context (onset-envelope autocorrelation up to 3 s: ~86 %;
    with the spectral features ~88 %), as the paper's Frequency 59.6 % vs Time 81.8 % and
    Black-box 87.3 % (Pons et al. 2016, Table 1). Tempo and meter alone give ~80 %.
    ``borrow_prob``, ``timing_jitter_ms`` and ``snr_db`` move the temporal proxy,
    ``typical_prob`` the spectral one.

    Attributes
    ----------
    bpm_jitter : float
        Relative s.d. of the jitter applied to a real track's BPM drawn for a synthetic one.
    borrow_prob : float
        Probability, per role, that its rhythm comes from another (random) dance.
    variant_mix_prob : float
        Probability, per role, that the role uses another variant of the same dance.
    drop_prob : float
        Probability that a pattern hit is removed (per hit, per bar).
    ghost_prob : float
        Probability that an empty 8th-note step gets a ghost hit (per step, per bar).
    mute_prob : float
        Probability that an optional layer is muted during a 4-bar block.
    timing_jitter_ms : float
        S.d. of the humanised onset timing, in milliseconds.
    velocity_jitter : float
        S.d. of the log-normal velocity jitter (natural log units).
    snr_db : (float, float)
        Range of the signal-to-noise ratio of the added background noise, dB.
    reverb_rt60_s : (float, float)
        Range of the reverb decay time, seconds.
    reverb_wet : (float, float)
        Range of the reverb's wet/dry ratio.
    typical_prob : float
        Probability that a part plays one of its dance's typical sounds
        (:attr:`DanceSpec.palette`) instead of any sound of the shared pool; 0 makes timbre
        independent of the dance. Also scales the dance's drum-level offset.
    melody_prob : float
        Probability that a track has a melody line.
    level_db : (float, float)
        Range of the track's peak level, dBFS.
    part_gain_db : (float, float)
        Range of each part's level in the mix, dB.
    drum_bus_db : (float, float)
        Range of the drums' level against the tonal parts, dB (plus the dance's offset).
    master_tilt : (float, float)
        Range of the master EQ tilt: > 0 blends in a low-passed copy (darker), < 0 a
        high-passed one (brighter).
    """

    bpm_jitter: float = 0.01
    borrow_prob: float = 0.08
    variant_mix_prob: float = 0.3
    drop_prob: float = 0.1
    ghost_prob: float = 0.05
    mute_prob: float = 0.15
    timing_jitter_ms: float = 10.0
    velocity_jitter: float = 0.2
    snr_db: tuple[float, float] = (10.0, 35.0)
    reverb_rt60_s: tuple[float, float] = (0.2, 1.5)
    reverb_wet: tuple[float, float] = (0.05, 0.4)
    typical_prob: float = 0.8
    melody_prob: float = 0.6
    level_db: tuple[float, float] = (-6.0, -1.0)
    part_gain_db: tuple[float, float] = (-6.0, 0.0)
    drum_bus_db: tuple[float, float] = (-6.0, 2.0)
    master_tilt: tuple[float, float] = (-0.4, 0.5)

    def __post_init__(self) -> None:
        for name in ("borrow_prob", "variant_mix_prob", "drop_prob", "ghost_prob",
                     "mute_prob", "melody_prob", "typical_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"SynthConfig.{name} must be in [0, 1], got {value}")
        for name in ("bpm_jitter", "timing_jitter_ms", "velocity_jitter"):
            if getattr(self, name) < 0:
                raise ConfigError(f"SynthConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("snr_db", "reverb_rt60_s", "reverb_wet", "level_db", "part_gain_db",
                     "drum_bus_db", "master_tilt"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ConfigError(f"SynthConfig.{name} must be (low, high), got {(lo, hi)}")

    def to_dict(self) -> dict:
        return asdict(self)


SYNTH_CONFIG = SynthConfig()

#: Diatonic chord progressions as scale degrees (0-based), one chord per bar.
PROGRESSIONS: tuple[tuple[int, ...], ...] = (
    (0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (1, 4, 0, 0), (0, 0, 3, 4),
    (5, 3, 0, 4), (0, 3, 0, 4), (0, 4, 0, 4),
)
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)


# --------------------------------------------------------------------------- validation

def check_render_params(*, bpm: float, seconds: float, sample_rate: int) -> None:
    """Raise ConfigError naming the value if a render parameter is out of range."""
    if not np.isfinite(bpm) or not BPM_LIMITS[0] <= bpm <= BPM_LIMITS[1]:
        raise ConfigError(f"bpm must be within {BPM_LIMITS[0]:g}..{BPM_LIMITS[1]:g}, got {bpm}")
    if not np.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"seconds must be > 0, got {seconds}")
    if int(sample_rate) != sample_rate or sample_rate < 8000:
        raise ConfigError(f"sample_rate must be an integer >= 8000 Hz, got {sample_rate}")


# --------------------------------------------------------------------------- helpers

def _place(out: np.ndarray, shot: np.ndarray, starts: np.ndarray, gains: np.ndarray) -> None:
    """Add ``gain * shot`` at every start sample (in place), clipped at both ends.

    Parameters
    ----------
    out : np.ndarray, shape (n,)
    shot : np.ndarray, shape (L,)
    starts : np.ndarray of int, shape (k,)
    gains : np.ndarray, shape (k,)
    """
    n, length = out.size, shot.size
    for s, g in zip(starts.tolist(), gains.tolist()):
        a, b = max(s, 0), min(s + length, n)
        if b > a:
            out[a:b] += g * shot[a - s:b - s]


def _pick_sound(rng: np.random.Generator, pool, typical: tuple[str, ...],
                typical_prob: float) -> str:
    """A sound for one part: one of the dance's ``typical`` ones with probability
    ``typical_prob``, else any of the shared ``pool`` (uniformly)."""
    names = list(typical) if typical and rng.random() < typical_prob else list(pool)
    return names[int(rng.integers(len(names)))]


def _swing_positions(swing: float) -> np.ndarray:
    """Position of the 4 16th steps inside a beat (in beats) for a swing ratio.

    ``swing`` = position of the off-beat 8th (0.5 straight, 2/3 triplet shuffle, as in jive).
    """
    return np.array([0.0, swing / 2, swing, swing + (1 - swing) / 2])


@dataclass
class _Grid:
    """Onset timing of one track: tempo, meter, swing and where the excerpt starts."""

    beat_s: float
    bar_steps: int
    n_bars: int
    offset_s: float
    swing_pos: np.ndarray  # (4,)

    @property
    def n_steps(self) -> int:
        return self.n_bars * self.bar_steps

    def times(self, steps: np.ndarray) -> np.ndarray:
        """Seconds of global step indices, shape like ``steps``."""
        beats = steps // STEPS_PER_BEAT + self.swing_pos[steps % STEPS_PER_BEAT]
        return self.offset_s + beats * self.beat_s


def _tile(text: str, grid: _Grid) -> np.ndarray:
    """A rhythm string tiled (or cut) to the track's steps, shape (n_steps,)."""
    vel = parse_rhythm(text)
    if vel.size % grid.bar_steps:
        # Borrowed from a dance of another meter: cut/tile to whole bars of this meter.
        vel = np.resize(vel, grid.bar_steps)
    return np.resize(vel, grid.n_steps)


def _role_rhythms(spec: DanceSpec, rng: np.random.Generator, grid: _Grid,
                  config: SynthConfig) -> dict[str, np.ndarray]:
    """Velocity per step for each role, shape (n_steps,), after borrowing and mutation."""
    variant = spec.variants[int(rng.integers(len(spec.variants)))]
    others = [d for d in DANCES.values() if d.name != spec.name]
    rhythms = {}
    for role in DRUM_ROLES + ("bass", "comp"):
        text = variant.get(role, "")
        u = rng.random()
        if u < config.borrow_prob:
            donor = others[int(rng.integers(len(others)))]
            text = donor.variants[int(rng.integers(len(donor.variants)))].get(role, text)
        elif u < config.borrow_prob + config.variant_mix_prob:
            text = spec.variants[int(rng.integers(len(spec.variants)))].get(role, text)
        if not text or rng.random() > spec.role_presence.get(role, 1.0):
            rhythms[role] = np.zeros(grid.n_steps)
            continue
        vel = _tile(text, grid)
        # Pattern mutations: drop hits, add ghost notes on empty 8th-note steps.
        vel = np.where(rng.random(vel.size) < config.drop_prob, 0.0, vel)
        eighth = (np.arange(vel.size) % 2 == 0) & (vel == 0)
        vel = np.where(eighth & (rng.random(vel.size) < config.ghost_prob), 0.35, vel)
        rhythms[role] = vel
    # Arrangement: optional layers drop out for whole 4-bar blocks.
    block = 4 * grid.bar_steps
    for role in ("snare", "hat", "perc", "comp"):
        for start in range(0, grid.n_steps, block):
            if rng.random() < config.mute_prob:
                rhythms[role][start:start + block] = 0.0
    return rhythms


def _onsets(vel: np.ndarray, grid: _Grid, rng: np.random.Generator, config: SynthConfig,
            sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(step indices, start samples, gains) of the non-zero steps, humanised."""
    steps = np.flatnonzero(vel)
    t = grid.times(steps) + rng.normal(0.0, config.timing_jitter_ms / 1000.0, steps.size)
    gains = vel[steps] * np.exp(rng.normal(0.0, config.velocity_jitter, steps.size))
    return steps, np.round(t * sample_rate).astype(np.int64), gains


def _reverb_ir(rng: np.random.Generator, sample_rate: int, config: SynthConfig) -> np.ndarray:
    """A room impulse response: exponentially decaying, low-passed noise, unit energy."""
    from scipy import signal  # scipy.signal takes ~1 s to import: off `import tfcnn.synth`
    rt60 = rng.uniform(*config.reverb_rt60_s)
    t = np.arange(int(rt60 * sample_rate)) / sample_rate
    ir = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
    sos = signal.butter(1, rng.uniform(2000, 8000) / (sample_rate / 2), output="sos")
    ir = signal.sosfilt(sos, ir)
    return (ir / np.sqrt(np.sum(ir ** 2))).astype(np.float32)


# --------------------------------------------------------------------------- the track

@dataclass
class _Harmony:
    """Key, mode and chord progression of one track (drawn independently of the dance)."""

    scale: tuple[int, ...]
    key: int
    progression: tuple[int, ...]
    brightness: float

    def triad(self, bar: int) -> list[int]:
        """Semitones above the tonic of the bar's diatonic triad (root, third, fifth)."""
        degree = self.progression[bar % len(self.progression)]
        return [self.scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]


def _place_notes(out: np.ndarray, voice: ins.Voice, chords: list[tuple[int, ...]],
                 starts: np.ndarray, gains: np.ndarray, *, duration_s: float,
                 sample_rate: int, brightness: float) -> None:
    """Render each distinct chord (tuple of MIDI notes) once and add it at its onsets.

    ``chords[i]`` sounds at ``starts[i]`` with ``gains[i]``; shapes (k,).
    """
    for notes in sorted(set(chords)):
        shot = ins.render_note(voice, [ins.midi_to_hz(m) for m in notes],
                               duration_s=duration_s, sample_rate=sample_rate,
                               brightness=brightness)
        sel = np.array([c == notes for c in chords], dtype=bool)
        _place(out, shot, starts[sel], gains[sel])


def _drum_parts(spec: DanceSpec, rhythms: dict[str, np.ndarray], grid: _Grid,
                rng: np.random.Generator, config: SynthConfig, n: int,
                sample_rate: int) -> np.ndarray:
    """The drum bus, shape (n,): one sound per role, drawn from the pool or the palette."""
    drums = np.zeros(n, dtype=np.float32)
    for role in DRUM_ROLES:
        sound = _pick_sound(rng, ins.DRUM_ROLES[role], spec.palette.get(role, ()),
                            config.typical_prob)
        shot = ins.DRUMS[sound](rng, sample_rate)
        _, starts, gains = _onsets(rhythms[role], grid, rng, config, sample_rate)
        gain = 10 ** (rng.uniform(*config.part_gain_db) / 20)
        _place(drums, shot, starts, gain * gains)
    return drums


def _tonal_parts(spec: DanceSpec, rhythms: dict[str, np.ndarray], grid: _Grid,
                 rng: np.random.Generator, config: SynthConfig, n: int,
                 sample_rate: int) -> np.ndarray:
    """Bass, chord comping and (sometimes) a melody, shape (n,)."""
    tonal = np.zeros(n, dtype=np.float32)
    harmony = _Harmony(scale=MINOR if rng.random() < spec.minor_prob else MAJOR,
                       key=int(rng.integers(12)),
                       progression=PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))],
                       brightness=rng.uniform(0.7, 1.4))
    palette = spec.palette
    place = dict(sample_rate=sample_rate, brightness=harmony.brightness)

    # Bass (MIDI 28-39 tonic): the chord root on accented hits and downbeats, else the fifth.
    voice = ins.BASS_VOICES[_pick_sound(rng, ins.BASS_VOICES, palette.get("bass", ()),
                                        config.typical_prob)]
    length_s = rng.uniform(*spec.bass_beats) * grid.beat_s
    steps, starts, gains = _onsets(rhythms["bass"], grid, rng, config, sample_rate)
    strong = (steps % grid.bar_steps == 0) | (rhythms["bass"][steps] >= 1.0)
    notes = [(28 + harmony.key + harmony.triad(b)[0 if s else 2],)
             for b, s in zip((steps // grid.bar_steps).tolist(), strong.tolist())]
    gain = 10 ** (rng.uniform(*config.part_gain_db) / 20)
    _place_notes(tonal, voice, notes, starts, gain * gains, duration_s=length_s, **place)

    # Comping: the bar's triad voiced above C3.
    voice = ins.VOICES[_pick_sound(rng, ins.VOICES, palette.get("comp", ()),
                                   config.typical_prob)]
    length_s = rng.uniform(*spec.comp_beats) * grid.beat_s
    steps, starts, gains = _onsets(rhythms["comp"], grid, rng, config, sample_rate)
    chords = [tuple(48 + harmony.key + p for p in harmony.triad(b))
              for b in (steps // grid.bar_steps).tolist()]
    gain = 10 ** (rng.uniform(*config.part_gain_db) / 20)
    _place_notes(tonal, voice, chords, starts, gain * gains, duration_s=length_s, **place)

    # Melody: chord tones, mostly on beats; its rhythm is the same for every dance.
    if rng.random() < config.melody_prob:
        voice = ins.VOICES[_pick_sound(rng, ins.VOICES, palette.get("lead", ()),
                                       config.typical_prob)]
        index = np.arange(grid.n_steps)
        p = np.where(index % STEPS_PER_BEAT == 0, 0.45, np.where(index % 2 == 0, 0.1, 0.0))
        vel = (rng.random(grid.n_steps) < p) * 0.8
        steps, starts, gains = _onsets(vel, grid, rng, config, sample_rate)
        notes = [(72 + harmony.key + harmony.triad(b)[int(rng.integers(3))],)
                 for b in (steps // grid.bar_steps).tolist()]
        length_s = rng.uniform(0.5, 1.5) * grid.beat_s
        gain = 10 ** ((rng.uniform(*config.part_gain_db) - 2.0) / 20)
        _place_notes(tonal, voice, notes, starts, gain * gains, duration_s=length_s, **place)
    return tonal


def _room_and_master(mix: np.ndarray, rng: np.random.Generator, config: SynthConfig,
                     sample_rate: int) -> np.ndarray:
    """Reverb, background noise, master EQ tilt and peak level; shape (n,) -> (n,)."""
    from scipy import signal  # scipy.signal takes ~1 s to import: off `import tfcnn.synth`
    n = mix.size
    mix = mix / max(float(np.sqrt(np.mean(mix ** 2))), 1e-9)  # unit RMS

    # Room: one reverb on the whole mix (the only long convolution of the track).
    wet = rng.uniform(*config.reverb_wet)
    ir = _reverb_ir(rng, sample_rate, config)
    mix = (1 - wet) * mix + wet * signal.fftconvolve(mix, ir)[:n].astype(np.float32)

    # Background noise at a random SNR, coloured by a random one-pole low-pass.
    snr_db = rng.uniform(*config.snr_db)
    pole = rng.uniform(0.0, 0.98)
    noise = signal.lfilter([1 - pole], [1, -pole], rng.standard_normal(n)).astype(np.float32)
    noise *= np.sqrt(np.mean(mix ** 2) / max(np.mean(noise ** 2), 1e-12)) * 10 ** (-snr_db / 20)
    mix = mix + noise

    # Master: a random tilt (blend in a low-passed or high-passed copy), random peak level.
    cutoff = rng.uniform(1500, 12000) / (sample_rate / 2)
    lowpassed = signal.sosfilt(signal.butter(1, cutoff, output="sos"), mix).astype(np.float32)
    tilt = rng.uniform(*config.master_tilt)
    mix = (1 - tilt) * mix + tilt * lowpassed if tilt > 0 else mix - tilt * (mix - lowpassed)
    peak = max(float(np.max(np.abs(mix))), 1e-9)
    return (mix * (10 ** (rng.uniform(*config.level_db) / 20) / peak)).astype(np.float32)


def _peaking_eq(x: np.ndarray, *, centre_hz: float, gain_db: float,
                sample_rate: int) -> np.ndarray:
    """A one-octave peaking EQ (RBJ biquad, Q = 1.41) by ``gain_db`` at ``centre_hz``;
    shape (n,) -> (n,) float32."""
    from scipy import signal  # scipy.signal takes ~1 s to import: off `import tfcnn.synth`
    amp = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * min(centre_hz, 0.45 * sample_rate) / sample_rate
    alpha = np.sin(w0) / (2 * np.sqrt(2))
    b = [1 + alpha * amp, -2 * np.cos(w0), 1 - alpha * amp]
    a = [1 + alpha / amp, -2 * np.cos(w0), 1 - alpha / amp]
    return signal.lfilter(b, a, x).astype(np.float32)


def render_track(dance: str | DanceSpec, *, bpm: float, seconds: float, seed: int,
                 sample_rate: int = FRONT_END.sample_rate,
                 config: SynthConfig = SYNTH_CONFIG) -> np.ndarray:
    """Render one SynthBallroom track of ``dance`` at exactly ``bpm``.

    Parameters
    ----------
    dance : str or DanceSpec
        One of :data:`tfcnn.config.CLASSES`, or a composed spec (a scenario's track plays
        one dance's rhythm with another's sounds, see :mod:`tfcnn.synth.scenarios`).
    bpm : float, keyword-only
        Tempo in beats per minute (30..300); the beat is the quarter note.
    seconds : float, keyword-only
        Duration in seconds.
    seed : int, keyword-only
        Seed of everything random in the track (rhythm mutations, sounds, mix).
    sample_rate : int, keyword-only
        Hz (44100 by default, the paper's rate).
    config : SynthConfig, keyword-only
        Difficulty knobs.

    Returns
    -------
    np.ndarray, shape (round(seconds * sample_rate),), float32, peak < 1

    Raises
    ------
    ConfigError
        Unknown dance (the message lists the valid ones), bpm outside 30..300,
        ``seconds <= 0`` or a bad sample rate.
    """
    spec = dance if isinstance(dance, DanceSpec) else dance_spec(dance)
    check_render_params(bpm=bpm, seconds=seconds, sample_rate=sample_rate)
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    beat_s = 60.0 / bpm
    bar_s = beat_s * spec.beats_per_bar
    # A 30 s excerpt starts anywhere in a bar; one spare bar covers the offset and jitter.
    offset_s = -rng.uniform(0.0, bar_s)
    grid = _Grid(beat_s=beat_s, bar_steps=spec.bar_steps,
                 n_bars=int(np.ceil((seconds - offset_s) / bar_s)) + 1, offset_s=offset_s,
                 swing_pos=_swing_positions(rng.uniform(*spec.swing)))
    rhythms = _role_rhythms(spec, rng, grid, config)
    drums = _drum_parts(spec, rhythms, grid, rng, config, n, sample_rate)
    tonal = _tonal_parts(spec, rhythms, grid, rng, config, n, sample_rate)
    # Heavier percussion in samba, lighter drums in the waltzes (weak, scaled prior).
    drum_db = rng.uniform(*config.drum_bus_db) + config.typical_prob * spec.drum_gain_db
    mix = tonal + 10 ** (drum_db / 20) * drums
    if spec.eq_gain_db:  # a class's spectral envelope (the timbre scenario); before the room
        mix = _peaking_eq(mix, centre_hz=spec.eq_hz, gain_db=spec.eq_gain_db,
                          sample_rate=sample_rate)
    return _room_and_master(mix, rng, config, sample_rate)


# --------------------------------------------------------------------------- tempo probes

def render_click_track(*, bpm: float, seconds: float, beats_per_bar: int = 4,
                       sample_rate: int = FRONT_END.sample_rate) -> np.ndarray:
    """A metronome: a click on every beat, the downbeat higher and louder.

    Parameters
    ----------
    bpm : float, keyword-only
        Beats per minute (30..300).
    seconds : float, keyword-only
    beats_per_bar : int, keyword-only
        Beats between accented downbeats (>= 1).
    sample_rate : int, keyword-only

    Returns
    -------
    np.ndarray, shape (round(seconds * sample_rate),), float32, peak 0.9
    """
    check_render_params(bpm=bpm, seconds=seconds, sample_rate=sample_rate)
    if int(beats_per_bar) != beats_per_bar or beats_per_bar < 1:
        raise ConfigError(f"beats_per_bar must be an integer >= 1, got {beats_per_bar}")
    n = int(round(seconds * sample_rate))
    t = np.arange(int(0.04 * sample_rate)) / sample_rate
    accent = np.sin(2 * np.pi * 1600 * t) * np.exp(-t / 0.008)
    click = 0.6 * np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.008)
    out = np.zeros(n, dtype=np.float32)
    beats = np.arange(int(np.ceil(seconds * bpm / 60)))
    starts = np.round(beats * 60.0 / bpm * sample_rate).astype(np.int64)
    down = beats % int(beats_per_bar) == 0
    _place(out, accent.astype(np.float32), starts[down], np.ones(int(down.sum())))
    _place(out, click.astype(np.float32), starts[~down], np.ones(int((~down).sum())))
    return (0.9 * out / max(float(np.max(np.abs(out))), 1e-9)).astype(np.float32)


def render_drum_loop(*, bpm: float, seconds: float, sample_rate: int = FRONT_END.sample_rate,
                     seed: int = 0) -> np.ndarray:
    """A plain 4/4 rock loop: kick on 1 and 3, snare on 2 and 4, closed hi-hat 8ths.

    No humanisation, noise or tonal parts: a clean probe of tempo alone.

    Parameters
    ----------
    bpm : float, keyword-only
    seconds : float, keyword-only
    sample_rate : int, keyword-only
    seed : int, keyword-only
        Seeds the drum sounds.

    Returns
    -------
    np.ndarray, shape (round(seconds * sample_rate),), float32, peak 0.9
    """
    check_render_params(bpm=bpm, seconds=seconds, sample_rate=sample_rate)
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    grid = _Grid(beat_s=60.0 / bpm, bar_steps=16,
                 n_bars=int(np.ceil(seconds * bpm / 240)) + 1, offset_s=0.0,
                 swing_pos=_swing_positions(0.5))
    out = np.zeros(n, dtype=np.float32)
    loop = {"kick": "X.......X.......", "snare": "....X.......X...", "hat": "x.x.x.x.x.x.x.x."}
    for role, text in loop.items():
        vel = _tile(text, grid)
        steps = np.flatnonzero(vel)
        starts = np.round(grid.times(steps) * sample_rate).astype(np.int64)
        _place(out, ins.DRUMS[role](rng, sample_rate), starts, vel[steps] * 0.8)
    return (0.9 * out / max(float(np.max(np.abs(out))), 1e-9)).astype(np.float32)


def render_waltz_loop(*, bpm: float, seconds: float, sample_rate: int = FRONT_END.sample_rate,
                      seed: int = 0) -> np.ndarray:
    """A plain 3/4 waltz accompaniment: oom-pah-pah.

    Kick and a tuba root on beat 1, a string triad on beats 2 and 3, a closed hi-hat on every
    beat; one C-major chord throughout. No humanisation or noise: a clean triple-meter probe.

    Parameters
    ----------
    bpm : float, keyword-only
        Beats (quarter notes) per minute, 30..300.
    seconds : float, keyword-only
    sample_rate : int, keyword-only
    seed : int, keyword-only
        Seeds the drum sounds.

    Returns
    -------
    np.ndarray, shape (round(seconds * sample_rate),), float32, peak 0.9
    """
    check_render_params(bpm=bpm, seconds=seconds, sample_rate=sample_rate)
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    beat_s = 60.0 / bpm
    beats = np.arange(int(np.ceil(seconds / beat_s)))
    starts = np.round(beats * beat_s * sample_rate).astype(np.int64)
    one = beats % 3 == 0                                            # the downbeat of each bar
    out = np.zeros(n, dtype=np.float32)
    _place(out, ins.DRUMS["kick"](rng, sample_rate), starts[one], np.full(int(one.sum()), 0.8))
    _place(out, ins.DRUMS["hat"](rng, sample_rate), starts, np.full(beats.size, 0.3))
    bass = ins.render_note(ins.BASS_VOICES["tuba"], [ins.midi_to_hz(36)],
                           duration_s=0.8 * beat_s, sample_rate=sample_rate, brightness=1.0)
    _place(out, bass.astype(np.float32), starts[one], np.full(int(one.sum()), 0.7))
    chord = ins.render_note(ins.VOICES["strings"], [ins.midi_to_hz(m) for m in (60, 64, 67)],
                            duration_s=0.6 * beat_s, sample_rate=sample_rate, brightness=1.0)
    _place(out, chord.astype(np.float32), starts[~one], np.full(int((~one).sum()), 0.5))
    return (0.9 * out / max(float(np.max(np.abs(out))), 1e-9)).astype(np.float32)
