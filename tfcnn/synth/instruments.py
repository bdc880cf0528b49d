"""One-shot instrument sounds for SynthBallroom: drums and wavetable tonal voices.

Every sound is rendered once per track (with that track's random timbre) and then placed at
its onsets by addition (see :mod:`tfcnn.synth.render`), which is what keeps generation fast.
Timbre is drawn from pools shared by all dances, tilted towards each dance's overlapping
palette (:attr:`tfcnn.synth.dances.DanceSpec.palette`): the paper's Frequency model (spectral
cues only) must stay well above chance but clearly below the Time model (Pons et al. 2016,
Table 1: 59.6 % vs 81.8 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

#: Samples of one wavetable period; nearest-sample lookup is plenty for 16-bit, 40-band use.
TABLE_SIZE = 4096


def _t(duration_s: float, sample_rate: int) -> np.ndarray:
    """Time axis in seconds, shape (round(duration_s * sample_rate),)."""
    return np.arange(max(1, int(round(duration_s * sample_rate)))) / sample_rate


def _bandpass(x: np.ndarray, low_hz: float, high_hz: float, sample_rate: int) -> np.ndarray:
    """2nd-order Butterworth band-pass, edges clipped inside (0, Nyquist)."""
    from scipy import signal  # scipy.signal takes ~1 s to import: off `import tfcnn.synth`
    nyq = sample_rate / 2
    low = float(np.clip(low_hz / nyq, 1e-4, 0.98))
    high = float(np.clip(high_hz / nyq, low + 1e-3, 0.99))
    sos = signal.butter(2, [low, high], btype="band", output="sos")
    return signal.sosfilt(sos, x)


def _highpass(x: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    from scipy import signal  # scipy.signal takes ~1 s to import: off `import tfcnn.synth`
    sos = signal.butter(2, min(cutoff_hz / (sample_rate / 2), 0.99), btype="high", output="sos")
    return signal.sosfilt(sos, x)


def _norm(x: np.ndarray) -> np.ndarray:
    """Peak-normalise to 1 (float32); silence stays silence."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return (x / peak).astype(np.float32) if peak > 0 else x.astype(np.float32)


# --------------------------------------------------------------------------- drums
# Each drum builder: (rng, sample_rate) -> one-shot float32, peak 1. Parameters are drawn
# per track so the same role sounds different from track to track.

def kick(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Bass drum: a sine whose pitch falls from ~3x to f0 (40-70 Hz), plus a beater click."""
    f0 = rng.uniform(40, 70)
    decay = rng.uniform(0.08, 0.35)
    t = _t(decay * 4, sample_rate)
    freq = f0 * (1 + rng.uniform(1.5, 3.5) * np.exp(-t / rng.uniform(0.01, 0.04)))
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate
    body = np.sin(phase) * np.exp(-t / decay)
    click = _highpass(rng.standard_normal(t.size), 2000, sample_rate) * np.exp(-t / 0.004)
    return _norm(body + rng.uniform(0.05, 0.4) * click)


def surdo(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Large low drum (samba surdo / floor tom): 50-95 Hz, long ring, little sweep."""
    f0 = rng.uniform(50, 95)
    decay = rng.uniform(0.25, 0.6)
    t = _t(decay * 3, sample_rate)
    freq = f0 * (1 + 0.3 * np.exp(-t / 0.03))
    body = np.sin(2 * np.pi * np.cumsum(freq) / sample_rate) * np.exp(-t / decay)
    skin = _bandpass(rng.standard_normal(t.size), 100, 600, sample_rate) * np.exp(-t / 0.02)
    return _norm(body + 0.3 * skin)


def snare(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Snare: a 150-260 Hz membrane tone plus band-passed noise (the wires)."""
    decay = rng.uniform(0.06, 0.22)
    t = _t(decay * 4, sample_rate)
    tone = np.sin(2 * np.pi * rng.uniform(150, 260) * t) * np.exp(-t / 0.04)
    lo = rng.uniform(1000, 3000)
    wires = _bandpass(rng.standard_normal(t.size), lo, lo * rng.uniform(2, 5), sample_rate)
    return _norm(rng.uniform(0.2, 0.7) * tone + _norm(wires) * np.exp(-t / decay))


def clap(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Hand clap: three quick noise bursts then a short tail, band-passed around 1-2 kHz."""
    t = _t(0.25, sample_rate)
    env = np.exp(-t / rng.uniform(0.04, 0.09))
    gap = rng.uniform(0.006, 0.012)
    for k in range(3):
        env += np.where(t >= k * gap, np.exp(-(t - k * gap) / 0.004), 0.0)
    centre = rng.uniform(900, 2000)
    return _norm(_bandpass(rng.standard_normal(t.size), centre / 1.6, centre * 1.8,
                           sample_rate) * env)


def rim(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Rim shot / side stick: a short 400-900 Hz knock with a click."""
    t = _t(0.06, sample_rate)
    tone = np.sin(2 * np.pi * rng.uniform(400, 900) * t) * np.exp(-t / 0.012)
    click = _highpass(rng.standard_normal(t.size), 3000, sample_rate) * np.exp(-t / 0.003)
    return _norm(tone + 0.5 * click)


def hat(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Closed hi-hat: high-passed noise with a 20-90 ms decay."""
    decay = rng.uniform(0.02, 0.09)
    t = _t(decay * 4, sample_rate)
    noise = _highpass(rng.standard_normal(t.size), rng.uniform(5000, 9000), sample_rate)
    return _norm(noise * np.exp(-t / decay))


def ride(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Ride cymbal: inharmonic partials plus hiss, long decay."""
    decay = rng.uniform(0.25, 0.7)
    t = _t(decay * 2.5, sample_rate)
    base = rng.uniform(300, 600)
    partials = sum(np.sin(2 * np.pi * base * r * t + rng.uniform(0, 6.3))
                   for r in (1.0, 1.48, 2.13, 2.87, 3.61, 4.43))
    hiss = _highpass(rng.standard_normal(t.size), 6000, sample_rate)
    return _norm((0.15 * partials + hiss) * np.exp(-t / decay))


def shaker(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Shaker / ganzá: band-passed noise with a soft attack."""
    dur = rng.uniform(0.05, 0.12)
    t = _t(dur, sample_rate)
    env = np.sin(np.pi * t / dur) ** rng.uniform(1, 3)
    lo = rng.uniform(3000, 6000)
    return _norm(_bandpass(rng.standard_normal(t.size), lo, lo * 2.5, sample_rate) * env)


def clave(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Claves: a bright, very short 1.8-2.8 kHz resonance."""
    t = _t(0.08, sample_rate)
    return _norm(np.sin(2 * np.pi * rng.uniform(1800, 2800) * t)
                 * np.exp(-t / rng.uniform(0.01, 0.025)))


def cowbell(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Cowbell: two detuned square-ish tones (~540/800 Hz family)."""
    t = _t(0.3, sample_rate)
    f = rng.uniform(450, 650)
    tone = np.sign(np.sin(2 * np.pi * f * t)) + np.sign(np.sin(2 * np.pi * f * 1.48 * t))
    tone = _bandpass(tone, 400, 3000, sample_rate)
    return _norm(tone * np.exp(-t / rng.uniform(0.05, 0.15)))


def woodblock(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Wood block: a damped 700-1300 Hz sine."""
    t = _t(0.08, sample_rate)
    return _norm(np.sin(2 * np.pi * rng.uniform(700, 1300) * t) * np.exp(-t / 0.015))


def conga(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Conga / bongo open tone: 180-420 Hz with a slight pitch drop."""
    f0 = rng.uniform(180, 420)
    decay = rng.uniform(0.06, 0.2)
    t = _t(decay * 4, sample_rate)
    freq = f0 * (1 + 0.15 * np.exp(-t / 0.02))
    slap = _bandpass(rng.standard_normal(t.size), 800, 4000, sample_rate) * np.exp(-t / 0.006)
    return _norm(np.sin(2 * np.pi * np.cumsum(freq) / sample_rate) * np.exp(-t / decay)
                 + 0.3 * slap)


def tamborim(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Tamborim: a small, tight, high drum (500-900 Hz) with a crack."""
    t = _t(0.08, sample_rate)
    tone = np.sin(2 * np.pi * rng.uniform(500, 900) * t) * np.exp(-t / 0.02)
    crack = _bandpass(rng.standard_normal(t.size), 2000, 7000, sample_rate) * np.exp(-t / 0.01)
    return _norm(tone + 0.6 * crack)


def guiro(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Güiro: a scrape, i.e. noise amplitude-modulated at 30-60 Hz."""
    dur = rng.uniform(0.1, 0.2)
    t = _t(dur, sample_rate)
    am = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * rng.uniform(30, 60) * t))
    noise = _bandpass(rng.standard_normal(t.size), 1500, 6000, sample_rate)
    return _norm(noise * am * np.exp(-t / dur))


DrumBuilder = Callable[[np.random.Generator, int], np.ndarray]

#: Drum sounds by name; the dance rhythms refer to roles, and each role draws one of these.
DRUMS: dict[str, DrumBuilder] = {
    "kick": kick, "surdo": surdo, "snare": snare, "clap": clap, "rim": rim, "hat": hat,
    "ride": ride, "shaker": shaker, "clave": clave, "cowbell": cowbell,
    "woodblock": woodblock, "conga": conga, "tamborim": tamborim, "guiro": guiro,
}

#: Which sounds may play each drum role (the shared pool; a dance's palette picks among them).
DRUM_ROLES: dict[str, tuple[str, ...]] = {
    "kick": ("kick", "surdo", "conga"),
    "snare": ("snare", "clap", "rim", "tamborim", "conga"),
    "hat": ("hat", "ride", "shaker", "guiro"),
    "perc": ("clave", "cowbell", "woodblock", "rim", "tamborim", "conga", "shaker"),
}


# --------------------------------------------------------------------------- tonal voices

@dataclass(frozen=True)
class Voice:
    """A tonal instrument: harmonic spectrum and envelope, rendered through a wavetable.

    Attributes
    ----------
    rolloff : float
        Harmonic k has amplitude ``k ** -rolloff`` (higher = darker).
    odd_only : float
        Weight of the even harmonics removed (1 = clarinet/square-like).
    attack_s, decay_s : float
        Linear attack; exponential decay time constant (``inf`` = sustained).
    release_s : float
        Fade at the note end.
    detune_cents : float
        A second voice detuned by this much (bandoneon / accordion "musette" beating).
    vibrato_hz, vibrato_cents : float
        Sinusoidal vibrato.
    formant_hz : float
        Centre of a broad resonance boosting harmonics near it (0 = none).
    """

    rolloff: float
    odd_only: float = 0.0
    attack_s: float = 0.005
    decay_s: float = np.inf
    release_s: float = 0.03
    detune_cents: float = 0.0
    vibrato_hz: float = 0.0
    vibrato_cents: float = 0.0
    formant_hz: float = 0.0


#: Tonal instruments by name. "reed" is the bandoneon-like voice (tango prior), "strings"
#: the waltz prior; the rest are shared by every dance.
VOICES: dict[str, Voice] = {
    "piano": Voice(rolloff=1.6, attack_s=0.003, decay_s=0.6, release_s=0.05),
    "epiano": Voice(rolloff=2.6, attack_s=0.003, decay_s=0.9, release_s=0.06),
    "guitar": Voice(rolloff=1.3, attack_s=0.002, decay_s=0.35, release_s=0.03),
    "organ": Voice(rolloff=1.2, odd_only=0.4, attack_s=0.01, release_s=0.03),
    "strings": Voice(rolloff=1.0, attack_s=0.12, release_s=0.15, detune_cents=8,
                     vibrato_hz=5.5, vibrato_cents=12),
    "reed": Voice(rolloff=0.8, odd_only=0.5, attack_s=0.02, release_s=0.04, detune_cents=14,
                  formant_hz=1400),
    "brass": Voice(rolloff=0.9, attack_s=0.04, release_s=0.06, formant_hz=1100),
    "flute": Voice(rolloff=3.5, attack_s=0.05, release_s=0.08, vibrato_hz=5.0,
                   vibrato_cents=15),
    "vibes": Voice(rolloff=4.0, attack_s=0.002, decay_s=1.2, release_s=0.1, vibrato_hz=6,
                   vibrato_cents=5),
    "synth": Voice(rolloff=1.0, attack_s=0.01, release_s=0.05, detune_cents=10),
}

#: Bass voices (all dances).
BASS_VOICES: dict[str, Voice] = {
    "upright": Voice(rolloff=2.2, attack_s=0.01, decay_s=0.5, release_s=0.05),
    "electric": Voice(rolloff=1.6, attack_s=0.004, decay_s=0.9, release_s=0.04),
    "synthbass": Voice(rolloff=1.1, attack_s=0.004, decay_s=0.4, release_s=0.03),
    "tuba": Voice(rolloff=1.8, attack_s=0.03, release_s=0.06, formant_hz=400),
}


def _wavetable(voice: Voice, f0_hz: float, sample_rate: int, *, brightness: float) -> np.ndarray:
    """One period of the voice's waveform at ``f0_hz``, shape (TABLE_SIZE,), band-limited."""
    n_harm = int(min(60, (sample_rate / 2 * 0.9) // max(f0_hz, 1.0)))
    k = np.arange(1, max(n_harm, 1) + 1, dtype=float)
    amp = k ** -(voice.rolloff / brightness)
    amp[1::2] *= 1 - voice.odd_only  # even harmonics (k = 2, 4, ...)
    if voice.formant_hz:
        amp *= 1 + 2.0 * np.exp(-0.5 * (np.log2(k * f0_hz / voice.formant_hz) / 0.6) ** 2)
    spec = np.zeros(TABLE_SIZE // 2 + 1, dtype=complex)
    spec[1:k.size + 1] = amp * np.exp(1j * np.linspace(0, 2.0, k.size))  # fixed phases
    table = np.fft.irfft(spec, n=TABLE_SIZE)
    return table / np.max(np.abs(table))


def render_note(voice: Voice, freqs_hz: list[float] | tuple[float, ...], *, duration_s: float,
                sample_rate: int, brightness: float = 1.0) -> np.ndarray:
    """Render one note or chord of ``voice`` lasting ``duration_s`` (plus its release).

    Parameters
    ----------
    voice : Voice
    freqs_hz : sequence of float
        Fundamental(s) in Hz; several make a chord.
    duration_s : float
        Held length in seconds; the release is added after it.
    sample_rate : int
    brightness : float
        Per-track tone control (> 1 brighter).

    Returns
    -------
    np.ndarray, shape (n,), float32, peak 1
    """
    n_hold = max(1, int(duration_s * sample_rate))
    n_rel = max(1, int(voice.release_s * sample_rate))
    n = n_hold + n_rel
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    vib = 1.0
    if voice.vibrato_hz:
        vib = 2 ** (voice.vibrato_cents / 1200 * np.sin(2 * np.pi * voice.vibrato_hz * t))
    detunes = (0.0, voice.detune_cents) if voice.detune_cents else (0.0,)
    for f in freqs_hz:
        table = _wavetable(voice, f, sample_rate, brightness=brightness)
        for cents in detunes:
            step = f * 2 ** (cents / 1200) / sample_rate * vib * np.ones(n)
            phase = np.cumsum(step)
            out += table[(phase * TABLE_SIZE).astype(np.int64) % TABLE_SIZE]
    env = np.minimum(1.0, t / max(voice.attack_s, 1e-4))
    if np.isfinite(voice.decay_s):
        env = env * np.exp(-t / voice.decay_s)
    env[n_hold:] *= np.linspace(1.0, 0.0, n_rel)
    return _norm(out * env)


def midi_to_hz(midi: float) -> float:
    """Equal-tempered frequency of a MIDI note number (A4 = 69 = 440 Hz)."""
    return 440.0 * 2 ** ((midi - 69) / 12)
