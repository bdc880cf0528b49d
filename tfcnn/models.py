"""The paper's four architectures and a registry of them (Pons, Lidy & Serra 2016, §1).

Every model takes normalised log-mel patches ``(batch, 1, n_mels, patch_frames)`` and returns
**logits** ``(batch, n_classes)``; callers apply the softmax (cross-entropy works on logits).

| name      | layers                                                            | #params   |
| --------- | ----------------------------------------------------------------- | --------- |
| blackbox  | conv 32×(12×8) → maxpool (4,1) → dropout → dense 200 → dropout → dense | 3,275,312 |
| timefreq  | [conv 32×(1×60) → pool (40,1)] ‖ [conv 32×(32×1) → pool (1,80)]   | 196,816   |
|           | → concat 960 → dropout → dense 200 → dropout → dense              |           |
| time      | conv 32×(1×60) → maxpool (40,1) → dropout → dense                 | 7,336     |
| frequency | conv 32×(32×1) → maxpool (1,80) → dropout → dense                 | 3,368     |

``timefreq-init`` is a ``timefreq`` whose conv branches start from the trained ``time`` and
``frequency`` models of the same fold (:func:`init_timefreq_from`); ``model.arch`` keeps the
name for bookkeeping.

The modules hold only parameters and constant layer sizes (no BatchNorm, no buffers, no
in-place operations), so fold models can be stacked with ``torch.func.stack_module_state``
and run with ``torch.func.functional_call`` / ``vmap``.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tfcnn.config import ARCHS, FRONT_END, LIMITS, TIMEFREQ_INIT
from tfcnn.errors import ConfigError

#: Paper defaults shared by the architectures (§1, §2).
N_FILTERS = 32
HIDDEN_UNITS = 200
DROPOUT = 0.5
TIME_FILTER = (1, 60)  # 60 frames ≈ 1.4 s: one beat at 60 BPM (§3)
FREQ_FILTER = (32, 1)  # 32 of 40 bands: the filter can still slide in pitch (§3)
BLACKBOX_FILTER = (12, 8)
BLACKBOX_POOL = (4, 1)


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _shape2(name: str, value, *, limit: tuple[int, int]) -> tuple[int, int]:
    """``value`` as a (height, width) pair of positive ints no larger than ``limit``."""
    try:
        h, w = (int(v) for v in value)
        ok = (h, w) == tuple(value)
    except (TypeError, ValueError):
        ok = False
    if not ok or h < 1 or w < 1:
        raise ConfigError(f"{name} must be two positive integers (height, width), got {value!r}")
    if h > limit[0] or w > limit[1]:
        # Name the side that is too large and the largest shape that fits: the patch is the
        # paper's (40 bands x 80 frames, 1.86 s; Pons et al. 2016 §2) and is not changed to
        # make room for a longer filter.
        too = ([f"{w} frames wide but a patch is {limit[1]} frames"] if w > limit[1] else []) \
            + ([f"{h} bands high but a patch has {limit[0]} bands"] if h > limit[0] else [])
        raise ConfigError(
            f"{name} {(h, w)} does not fit its input of {limit[0]} x {limit[1]} "
            f"(bands x frames): {h}x{w} is {' and '.join(too)}; the largest that fits is "
            f"{min(h, limit[0])}x{min(w, limit[1])}"
        )
    return h, w


#: Upper bound of each size parameter (tfcnn.config.Limits); checked before any layer exists.
_MAXIMA: dict[str, int] = {
    "n_classes": LIMITS.max_classes, "n_mels": LIMITS.max_n_mels,
    "patch_frames": LIMITS.max_patch_frames, "n_filters": LIMITS.max_filters,
    "hidden": LIMITS.max_hidden,
}


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if name in _MAXIMA and value > _MAXIMA[name]:
        raise ConfigError(f"{name} must be <= {_MAXIMA[name]}, got {value!r}")
    return int(value)


def _probability(name: str, value) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        p = float("nan")
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
    return p


def _glorot_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, as Lasagne's defaults in the original code."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


class _Base(nn.Module):
    """Common bookkeeping: ``arch``, ``arch_params`` (JSON-able) and ``n_classes``."""

    arch: str = ""

    def _finish(self, arch_params: dict, n_classes: int) -> None:
        self.arch = type(self).arch
        # Lists, not tuples: identical after a JSON round trip (checkpoint metadata).
        self.arch_params = {
            k: list(v) if isinstance(v, tuple) else v for k, v in arch_params.items()
        }
        self.n_classes = n_classes
        _glorot_init(self)


# --------------------------------------------------------------------------------------------
# architectures
# --------------------------------------------------------------------------------------------
class BlackBox(_Base):
    """Black-box CNN: 32 filters of 12×8 → max-pool 4×1 → dropout → dense 200 → dropout → output.

    Parameters
    ----------
    n_classes : int
        Output units (8 for Ballroom).
    conv_filter : (int, int)
        Filter (bands, frames); paper 12×8.
    pool : (int, int)
        Max-pool (bands, frames); paper 4×1. The remainder is dropped (floor).
    n_filters, hidden, dropout, n_mels, patch_frames
        See the module defaults.
    """

    arch = "blackbox"

    def __init__(self, n_classes: int = 8, *, conv_filter=BLACKBOX_FILTER, pool=BLACKBOX_POOL,
                 n_filters: int = N_FILTERS, hidden: int = HIDDEN_UNITS,
                 dropout: float = DROPOUT, n_mels: int = FRONT_END.n_mels,
                 patch_frames: int = FRONT_END.patch_frames) -> None:
        super().__init__()
        n_classes = _positive_int("n_classes", n_classes)
        n_mels = _positive_int("n_mels", n_mels)
        patch_frames = _positive_int("patch_frames", patch_frames)
        conv_filter = _shape2("conv_filter", conv_filter, limit=(n_mels, patch_frames))
        conv_h, conv_w = n_mels - conv_filter[0] + 1, patch_frames - conv_filter[1] + 1
        pool = _shape2("pool", pool, limit=(conv_h, conv_w))
        n_filters = _positive_int("n_filters", n_filters)
        hidden = _positive_int("hidden", hidden)
        dropout = _probability("dropout", dropout)

        self.pool = pool
        self.conv = nn.Conv2d(1, n_filters, conv_filter)
        # (batch, n_filters, conv_h // pool_h, conv_w // pool_w) flattened
        n_flat = n_filters * (conv_h // pool[0]) * (conv_w // pool[1])
        self.hidden = nn.Linear(n_flat, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, n_classes)
        self._finish(dict(conv_filter=conv_filter, pool=pool, n_filters=n_filters,
                          hidden=hidden, dropout=dropout, n_mels=n_mels,
                          patch_frames=patch_frames), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (batch, 1, n_mels, patch_frames)`` → logits ``(batch, n_classes)``."""
        h = F.relu(self.conv(x))                  # (batch, n_filters, conv_h, conv_w)
        h = F.max_pool2d(h, self.pool)            # floor: remainder dropped
        h = torch.flatten(h, 1)                   # (batch, n_flat)
        # Dropout before both dense layers, as the original buildArchitecture.py: the dense
        # layer holds 3,270,600 of the 3,275,312 weights and this is its regulariser.
        h = F.relu(self.hidden(self.dropout(h)))  # (batch, hidden)
        return self.output(self.dropout(h))       # (batch, n_classes)


class _Branch(nn.Module):
    """Filters along one axis and a max-pool over the whole other axis (§1).

    ``along="time"``: 1×n filters, pooled over every band and no frame, so only temporal cues
    propagate while the frame resolution is kept (the Time architecture). ``along=
    "frequency"``: m×1 filters (m < n_mels lets a filter slide in pitch), pooled over every
    frame, so only spectral cues propagate (the Frequency architecture).
    """

    def __init__(self, *, along: str, filter_shape, n_filters: int, n_mels: int,
                 patch_frames: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, n_filters, filter_shape)
        bands = n_mels - filter_shape[0] + 1          # rows of the conv's feature map
        frames = patch_frames - filter_shape[1] + 1   # its columns
        if along == "time":
            self.pool, self.n_out = (bands, 1), n_filters * frames    # (40, 1) for 1×n
        else:
            self.pool, self.n_out = (1, frames), n_filters * bands    # (1, 80) for m×1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(x))                  # (batch, n_filters, bands, frames)
        h = F.max_pool2d(h, self.pool)            # one of the two axes pooled to 1
        return torch.flatten(h, 1)                # (batch, n_out)


class _OneBranch(_Base):
    """One branch → dropout → output: the Time and Frequency architectures.

    A subclass names its branch: ``along`` (the axis its filters run along, :class:`_Branch`),
    ``branch_attr`` (the attribute, hence the state-dict prefix ``time_branch.`` /
    ``freq_branch.`` that checkpoints and :mod:`tfcnn.parallel` use) and ``filter_param`` (the
    keyword of its filter shape).
    """

    along: str
    branch_attr: str
    filter_param: str

    def _build(self, n_classes: int, filter_shape, n_filters: int, dropout: float,
               n_mels: int, patch_frames: int) -> None:
        n_classes = _positive_int("n_classes", n_classes)
        n_mels = _positive_int("n_mels", n_mels)
        patch_frames = _positive_int("patch_frames", patch_frames)
        filter_shape = _shape2(self.filter_param, filter_shape, limit=(n_mels, patch_frames))
        n_filters = _positive_int("n_filters", n_filters)
        dropout = _probability("dropout", dropout)

        branch = _Branch(along=self.along, filter_shape=filter_shape, n_filters=n_filters,
                         n_mels=n_mels, patch_frames=patch_frames)
        setattr(self, self.branch_attr, branch)  # registered first: state-dict order
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(branch.n_out, n_classes)
        self._finish({self.filter_param: filter_shape, "n_filters": n_filters,
                      "dropout": dropout, "n_mels": n_mels, "patch_frames": patch_frames},
                     n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (batch, 1, n_mels, patch_frames)`` → logits ``(batch, n_classes)``."""
        return self.output(self.dropout(getattr(self, self.branch_attr)(x)))


class Time(_OneBranch):
    """Time architecture: 32 temporal filters (1×60) → max-pool (40,1) → dropout → output.

    Parameters
    ----------
    n_classes : int
        Output units.
    time_filter : (int, int)
        Filter (bands, frames); paper 1×60. Longer filters (e.g. 1×120) hold more beats of
        slow tempi (§3).
    n_filters, dropout, n_mels, patch_frames
        See the module defaults.
    """

    arch = "time"
    along, branch_attr, filter_param = "time", "time_branch", "time_filter"

    def __init__(self, n_classes: int = 8, *, time_filter=TIME_FILTER,
                 n_filters: int = N_FILTERS, dropout: float = DROPOUT,
                 n_mels: int = FRONT_END.n_mels,
                 patch_frames: int = FRONT_END.patch_frames) -> None:
        super().__init__()
        self._build(n_classes, time_filter, n_filters, dropout, n_mels, patch_frames)


class Frequency(_OneBranch):
    """Frequency architecture: 32 filters (32×1) → max-pool (1,80) → dropout → output.

    Parameters
    ----------
    n_classes : int
        Output units.
    freq_filter : (int, int)
        Filter (bands, frames); paper 32×1.
    n_filters, dropout, n_mels, patch_frames
        See the module defaults.
    """

    arch = "frequency"
    along, branch_attr, filter_param = "frequency", "freq_branch", "freq_filter"

    def __init__(self, n_classes: int = 8, *, freq_filter=FREQ_FILTER,
                 n_filters: int = N_FILTERS, dropout: float = DROPOUT,
                 n_mels: int = FRONT_END.n_mels,
                 patch_frames: int = FRONT_END.patch_frames) -> None:
        super().__init__()
        self._build(n_classes, freq_filter, n_filters, dropout, n_mels, patch_frames)


class TimeFreq(_Base):
    """Time-Frequency architecture: the Time and Frequency branches fused late (§1, Fig. 1).

    [conv 1×60 → pool (40,1)] ‖ [conv 32×1 → pool (1,80)] → concat (672 + 288 = 960)
    → dropout → dense 200 → dropout → output (dropout before both dense layers, as the
    original ``buildArchitecture.py``).

    Parameters
    ----------
    n_classes : int
        Output units.
    time_filter, freq_filter : (int, int)
        Branch filters (bands, frames); paper 1×60 and 32×1.
    n_filters : int
        Filters per branch (paper 32).
    hidden, dropout, n_mels, patch_frames
        See the module defaults.
    """

    arch = "timefreq"

    def __init__(self, n_classes: int = 8, *, time_filter=TIME_FILTER, freq_filter=FREQ_FILTER,
                 n_filters: int = N_FILTERS, hidden: int = HIDDEN_UNITS,
                 dropout: float = DROPOUT, n_mels: int = FRONT_END.n_mels,
                 patch_frames: int = FRONT_END.patch_frames) -> None:
        super().__init__()
        n_classes = _positive_int("n_classes", n_classes)
        n_mels = _positive_int("n_mels", n_mels)
        patch_frames = _positive_int("patch_frames", patch_frames)
        time_filter = _shape2("time_filter", time_filter, limit=(n_mels, patch_frames))
        freq_filter = _shape2("freq_filter", freq_filter, limit=(n_mels, patch_frames))
        n_filters = _positive_int("n_filters", n_filters)
        hidden = _positive_int("hidden", hidden)
        dropout = _probability("dropout", dropout)

        self.time_branch = _Branch(along="time", filter_shape=time_filter, n_filters=n_filters,
                                   n_mels=n_mels, patch_frames=patch_frames)
        self.freq_branch = _Branch(along="frequency", filter_shape=freq_filter,
                                   n_filters=n_filters, n_mels=n_mels,
                                   patch_frames=patch_frames)
        self.hidden = nn.Linear(self.time_branch.n_out + self.freq_branch.n_out, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, n_classes)
        self._finish(dict(time_filter=time_filter, freq_filter=freq_filter,
                          n_filters=n_filters, hidden=hidden, dropout=dropout,
                          n_mels=n_mels, patch_frames=patch_frames), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (batch, 1, n_mels, patch_frames)`` → logits ``(batch, n_classes)``."""
        h = torch.cat([self.time_branch(x), self.freq_branch(x)], dim=1)  # (batch, 960)
        h = F.relu(self.hidden(self.dropout(h)))  # dropout before both dense layers (original)
        # (batch, hidden)
        return self.output(self.dropout(h))                                 # (batch, n_classes)


class TimeFreqInit(TimeFreq):
    """``timefreq`` whose branches start from trained ``time`` and ``frequency`` models.

    Same layers and parameters as :class:`TimeFreq`; only ``arch`` differs, for bookkeeping.
    The branches are copied by :func:`init_timefreq_from`.
    """

    arch = TIMEFREQ_INIT


#: name → model class, keyed and ordered by :data:`tfcnn.config.ARCHS`; ``build_model`` is
#: the way to instantiate them.
ARCHITECTURES: dict[str, type[_Base]] = {
    cls.arch: cls for cls in sorted((BlackBox, TimeFreq, Time, Frequency, TimeFreqInit),
                                    key=lambda cls: ARCHS.index(cls.arch))
}


def arch_param_names(name: str) -> tuple[str, ...]:
    """Keyword parameters (besides ``n_classes``) that architecture ``name`` accepts."""
    cls = _lookup(name)
    params = inspect.signature(cls.__init__).parameters
    return tuple(p for p in params if p not in ("self", "n_classes"))


def stage_params(stage: str, arch_params: dict) -> dict:
    """The subset of ``arch_params`` that the stage model ``stage`` accepts."""
    valid = set(arch_param_names(stage))
    return {k: v for k, v in arch_params.items() if k in valid}


def _lookup(name: str) -> type[_Base]:
    try:
        return ARCHITECTURES[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown architecture {name!r}; valid architectures: {', '.join(ARCHITECTURES)}"
        ) from None


def build_model(name: str, n_classes: int = 8, **arch_params) -> nn.Module:
    """A freshly initialised model of architecture ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`ARCHITECTURES`.
    n_classes : int
        Output units.
    **arch_params
        Architecture parameters (e.g. ``time_filter=(1, 120)``); the paper's values otherwise.

    Returns
    -------
    torch.nn.Module
        Input ``(batch, 1, n_mels, patch_frames)``, output logits ``(batch, n_classes)``; with
        ``.arch``, ``.arch_params`` (resolved, JSON-able) and ``.n_classes``.

    Raises
    ------
    ConfigError
        Unknown architecture or parameter, or a parameter value that does not fit.
    """
    cls = _lookup(name)
    valid = arch_param_names(name)
    unknown = sorted(set(arch_params) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)} for architecture {name!r}; "
            f"valid parameters: {', '.join(valid)}"
        )
    return cls(n_classes, **arch_params)


def resolve_arch_params(name: str, **arch_params) -> dict:
    """Every parameter of architecture ``name`` with its value: ``arch_params`` where given,
    the paper's otherwise (JSON types, as a run's ``config.json`` records them).

    Checked by building the model (:class:`ConfigError` as :func:`build_model`); the global
    random state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        model = build_model(name, **arch_params)
    return json.loads(json.dumps(model.arch_params))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (Table 1's ``#params``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def init_timefreq_from(timefreq: nn.Module, time_model: nn.Module,
                       frequency_model: nn.Module) -> nn.Module:
    """Copy the trained conv branches of a ``time`` and a ``frequency`` model into a timefreq.

    Only the two convolution layers are copied; the dense layers keep their fresh Glorot
    initialisation. This is the original code's active configuration, where the Time-Frequency
    branches were initialised from the Time and Frequency models trained on the *same fold*
    (Pons et al.'s released code; training code must pass models of the same fold).

    Parameters
    ----------
    timefreq : TimeFreq
        Model to initialise, modified in place and returned.
    time_model : Time
    frequency_model : Frequency

    Raises
    ------
    ConfigError
        Wrong architectures or branch shapes that differ.
    """
    for model, cls, what in ((timefreq, TimeFreq, "timefreq"), (time_model, Time, "time"),
                             (frequency_model, Frequency, "frequency")):
        if not isinstance(model, cls):
            raise ConfigError(
                f"init_timefreq_from needs a {what} model, got {getattr(model, 'arch', model)!r}"
            )
    pairs = ((timefreq.time_branch.conv, time_model.time_branch.conv, "time"),
             (timefreq.freq_branch.conv, frequency_model.freq_branch.conv, "frequency"))
    for dst, src, what in pairs:
        if dst.weight.shape != src.weight.shape:
            raise ConfigError(
                f"{what} branch filters differ: timefreq has {tuple(dst.weight.shape)}, "
                f"the {what} model {tuple(src.weight.shape)}"
            )
    for dst, src, _ in pairs:
        dst.weight.copy_(src.weight)
        dst.bias.copy_(src.bias)
    return timefreq


def _conv_numpy(conv: nn.Conv2d) -> np.ndarray:
    return conv.weight.detach().to("cpu", torch.float32).numpy()  # (n_filters, 1, h, w)


def temporal_filters(model: nn.Module) -> np.ndarray | None:
    """The 1×n temporal filters, ``(n_filters, width)``; None if the model has none.

    Defined for ``time``, ``timefreq`` and ``timefreq-init`` with a one-band ``time_filter``.
    """
    branch = getattr(model, "time_branch", None)
    if branch is None:
        return None
    w = _conv_numpy(branch.conv)
    if w.shape[2] != 1:
        return None
    return w[:, 0, 0, :].copy()  # (n_filters, width)


def frequency_filters(model: nn.Module) -> np.ndarray | None:
    """The m×1 frequency filters, ``(n_filters, height)`` (low band first); None if none."""
    branch = getattr(model, "freq_branch", None)
    if branch is None:
        return None
    w = _conv_numpy(branch.conv)
    if w.shape[3] != 1:
        return None
    return w[:, 0, :, 0].copy()  # (n_filters, height)


def conv_filters(model: nn.Module) -> np.ndarray | None:
    """The black-box filters, ``(n_filters, height, width)``; None for other models."""
    if not isinstance(model, BlackBox):
        return None
    return _conv_numpy(model.conv)[:, 0].copy()
