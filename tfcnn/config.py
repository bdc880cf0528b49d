"""The paper's constants, in one place (Pons, Lidy & Serra 2016).

Every number of the paper lives in a frozen dataclass here; function bodies elsewhere take
them from these objects instead of repeating them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from tfcnn.errors import ConfigError

#: Ballroom's 8 dances, in the fixed order used for labels, outputs and tables.
CLASSES: tuple[str, ...] = (
    "ChaChaCha",
    "Jive",
    "Quickstep",
    "Rumba",
    "Samba",
    "Tango",
    "VienneseWaltz",
    "Waltz",
)


@dataclass(frozen=True)
class Limits:
    """Largest sizes any model, front end or run may ask for, checked before anything is built.

    A checkpoint header or a command line is user input: without bounds, ``n_filters = 10**8``
    allocates tens of GB and ``hop_length = 1`` makes a prediction 1000x slower. Each bound
    is far above the paper's value (in brackets) and below what would exhaust a machine.
    """

    max_sample_rate: int = 192_000  # 44 100 Hz
    max_n_fft: int = 16_384  # 2048
    min_hop_length: int = 64  # 1024
    max_n_mels: int = 256  # 40
    max_patch_frames: int = 1024  # 80
    max_frames_per_beat: int = 256  # off (the paper's input is not tempo-normalised)
    max_filters: int = 1024  # 32 per branch
    max_hidden: int = 4096  # 200
    max_classes: int = 1000  # 8
    max_epochs: int = 2000  # the paper's epoch limit


LIMITS = Limits()
#: The most epochs a run may train (the paper's own limit).
MAX_EPOCHS = LIMITS.max_epochs


def _check_at_most(name: str, value: int, maximum: int) -> None:
    if value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}")


@dataclass(frozen=True)
class FrontEnd:
    """Log-mel front end of the original Essentia pipeline (paper §2).

    Blackman-Harris window of 2048 samples, 50 % overlap at 44.1 kHz, 40 HTK mel bands,
    compression log10(1 + C x) with C = 10 000, patches of 80 frames.

    Two fields say what the model's patches are cut from, not how the log-mel is computed
    (:meth:`log_mel_part` leaves them out, so every input shares one feature cache):
    ``patch_frames``, the patch's width (the paper's 80 frames ≈ 1.86 s), and
    ``frames_per_beat``: None for the paper's frames, else the log-mel resampled in time so
    that one beat of the track's estimated tempo spans that many frames (a tempo-normalised,
    beat-synchronous input; :func:`tfcnn.features.model_input`). With 10, an 80-frame patch
    holds 8 beats whatever the tempo.
    """

    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 1024
    n_mels: int = 40
    f_min_hz: float = 0.0
    f_max_hz: float = 22050.0
    compression: float = 10000.0
    window_sum: float = 2.0
    patch_frames: int = 80
    frames_per_beat: int | None = None

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ConfigError(f"sample_rate must be > 0, got {self.sample_rate}")
        if self.n_fft <= 0 or self.hop_length <= 0:
            raise ConfigError(
                f"n_fft and hop_length must be > 0, got {self.n_fft} and {self.hop_length}"
            )
        if not 0.0 <= self.f_min_hz < self.f_max_hz <= self.sample_rate / 2:
            raise ConfigError(
                f"require 0 <= f_min_hz < f_max_hz <= sample_rate/2, got "
                f"{self.f_min_hz}, {self.f_max_hz}, sample_rate {self.sample_rate}"
            )
        if self.n_mels <= 0 or self.patch_frames <= 0:
            raise ConfigError(
                f"n_mels and patch_frames must be > 0, got {self.n_mels}, {self.patch_frames}"
            )
        _check_at_most("sample_rate", self.sample_rate, LIMITS.max_sample_rate)
        _check_at_most("n_fft", self.n_fft, LIMITS.max_n_fft)
        _check_at_most("n_mels", self.n_mels, LIMITS.max_n_mels)
        _check_at_most("patch_frames", self.patch_frames, LIMITS.max_patch_frames)
        if self.hop_length < LIMITS.min_hop_length:
            raise ConfigError(
                f"hop_length must be >= {LIMITS.min_hop_length}, got {self.hop_length}"
            )
        if self.frames_per_beat is not None:
            if (isinstance(self.frames_per_beat, bool) or not isinstance(self.frames_per_beat, int)
                    or not 1 <= self.frames_per_beat <= LIMITS.max_frames_per_beat):
                raise ConfigError(
                    f"frames_per_beat must be an integer in 1..{LIMITS.max_frames_per_beat} "
                    f"(or None: the paper's frames), got {self.frames_per_beat!r}")

    @property
    def frame_rate_hz(self) -> float:
        """Frames per second (44100 / 1024 ≈ 43.07)."""
        return self.sample_rate / self.hop_length

    @property
    def patch_seconds(self) -> float:
        """Duration covered by one patch (80 frames ≈ 1.86 s)."""
        return self.patch_frames * self.hop_length / self.sample_rate

    def n_frames(self, n_samples: int) -> int:
        """Frames of a signal of ``n_samples``: ``1 + ceil(n_samples / hop_length)``.

        Essentia's ``FrameGenerator(startFromZero=False)`` rule, as the original pipeline: the
        first frame is centred on sample 0, the last is the first centred at or past the end.
        """
        return 1 + -(-int(n_samples) // self.hop_length)

    @property
    def min_patch_samples(self) -> int:
        """Fewest samples that give one full patch: ``T = 1 + ceil(n / hop) >= patch_frames``.

        79,873 samples (1.81 s) for the paper's 80 frames of 1024 samples.
        """
        return (self.patch_frames - 2) * self.hop_length + 1

    @property
    def beat_synchronous(self) -> bool:
        """Whether patches are cut from a tempo-normalised log-mel (``frames_per_beat``)."""
        return self.frames_per_beat is not None

    def log_mel_part(self) -> "FrontEnd":
        """This front end with the patch fields at the paper's values: what decides the
        log-mel itself (the feature cache's key), whatever the model's input."""
        return replace(self, patch_frames=FrontEnd.patch_frames, frames_per_beat=None)

    def to_dict(self) -> dict:
        """Its fields; ``frames_per_beat`` only when set, so the paper's front end writes
        as it always has (checkpoint headers, ``config.json``, cache keys)."""
        out = asdict(self)
        if out["frames_per_beat"] is None:
            del out["frames_per_beat"]
        return out


@dataclass(frozen=True)
class TrainConfig:
    """Training recipe (paper §2 and the original code's schedule).

    Plain SGD, mean cross-entropy. After each epoch: if the training loss rose above the
    reference loss, a counter goes up and training stops once it passes ``stop_patience``;
    otherwise, if the counter is above ``halve_patience`` the learning rate halves and the
    counter resets, and the reference becomes this epoch's loss. The model with the best
    validation accuracy is kept.
    """

    preset: str = "paper"
    lr: float = 0.01
    batch_size: int = 10
    max_epochs: int = MAX_EPOCHS
    stop_patience: int = 40
    halve_patience: int = 20
    seed: int = 0
    amp: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a finite number > 0, got {self.lr}")
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be > 0, got {self.batch_size}")
        if not 1 <= self.max_epochs <= MAX_EPOCHS:
            raise ConfigError(f"max_epochs must be in [1, {MAX_EPOCHS}] (the paper's limit), "
                              f"got {self.max_epochs}")

    def with_overrides(self, **overrides) -> "TrainConfig":
        """A copy with the given non-None fields replaced (CLI ``--epochs`` etc.)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict:
        return asdict(self)


#: ``paper`` is the original recipe (patience 40/20, at most 2000 epochs). ``quick`` keeps its
#: rules (same learning rate, batch, schedule and best-validation model) with a fifth of the
#: patience (8/4) and at most 150 epochs, for CPUs and demos: the schedule, not the cap, is meant
#: to end a fold (the share of folds that reach the cap is reported with every Table 1).
PRESETS: dict[str, TrainConfig] = {
    "paper": TrainConfig(preset="paper"),
    "quick": TrainConfig(preset="quick", max_epochs=150, stop_patience=8, halve_patience=4),
}


def preset(name: str) -> TrainConfig:
    """The training preset called ``name``; an unknown name lists the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}"
        ) from None


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's Table 1 (10-fold accuracy on Ballroom)."""

    params: int
    mean: float
    std: float


#: Table 1 of the paper: #params and accuracy mean ± std (%) over 10 folds.
PAPER_TABLE1: dict[str, PaperRow] = {
    "blackbox": PaperRow(3_275_312, 87.25, 3.39),
    "timefreq": PaperRow(196_816, 86.54, 4.29),
    "time": PaperRow(7_336, 81.79, 4.72),
    "frequency": PaperRow(3_368, 59.59, 5.82),
}

#: The trainable architectures (keys of :data:`tfcnn.models.ARCHITECTURES`), in menu order.
#: ``timefreq-init``: a ``timefreq`` whose branches start from the ``time`` and ``frequency``
#: models trained on the same fold (the original code's active configuration).
ARCHS: tuple[str, ...] = ("blackbox", "timefreq", "time", "frequency", "timefreq-init")
TIMEFREQ_INIT = "timefreq-init"

#: Sweep engines (:data:`tfcnn.engines.ENGINES`): this process, or one Ray task per fold.
ENGINE_NAMES: tuple[str, ...] = ("local", "ray")

#: Fold protocols (:mod:`tfcnn.folds`): ``clean`` (stratified song-level folds, replica groups
#: kept together, normalisation on training songs) or ``paper`` (as the original code).
PROTOCOLS: tuple[str, ...] = ("clean", "paper")


def training_stages(arch: str) -> tuple[str, ...]:
    """The models trained, in order, for one fold of ``arch`` (the last one is tested)."""
    return ("time", "frequency", TIMEFREQ_INIT) if arch == TIMEFREQ_INIT else (arch,)


#: Tempo range of the Ballroom data set discussed in the paper (§3).
BALLROOM_BPM_RANGE: tuple[float, float] = (60.0, 224.0)

FRONT_END = FrontEnd()
