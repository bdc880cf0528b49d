"""What a training run is asked to do, as one frozen value: :class:`RunRequest`; a sweep is a
grid of them: :class:`SweepRequest`.

A request validates once, when it is made, and converts itself:

- to the ``python -m tfcnn train`` arguments that make it again (:meth:`RunRequest.argv`),
  and from argparse results (:meth:`RunRequest.from_args`): the CLI's options are generated
  from the fields (:func:`options`), so ``train``, ``sweep``, the app's launches and the
  resume command cannot disagree;
- to the request's part of a run folder's ``config.json`` (:meth:`RunRequest.to_config`) and
  back (:meth:`RunRequest.from_config`, what ``--resume`` from the app runs).

Adding an option is one field of :class:`RunRequest` (with its :class:`Option`) plus its use
in training. Torch-free at import (``--help`` reads the options); checking the architecture's
parameters builds the model, which loads torch.

Longer than 600 lines: the run request, the option table the CLI is generated from and the
sweep's grid of requests stay together, so every conversion (argv, ``config.json``,
``sweep.json``) is written beside the fields it converts and cannot drift from them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from tfcnn.config import ARCHS, FRONT_END, LIMITS, PRESETS, PROTOCOLS, FrontEnd, TrainConfig
from tfcnn.errors import ConfigError, TfcnnError

# ----------------------------------------------------------------------------- values as text


def parse_filter_shape(text: str) -> tuple[int, int]:
    """``"1x60"`` → ``(1, 60)``: a filter shape written as bands x frames.

    Raises :class:`ConfigError` naming ``text`` when it is not two positive integers.
    """
    try:
        height, width = (int(part) for part in str(text).lower().split("x"))
    except ValueError:
        raise ConfigError(
            f"filter shape must be HxW in bands x frames, e.g. 1x60, got {text!r}"
        ) from None
    if height <= 0 or width <= 0:
        raise ConfigError(f"filter shape must be positive, got {text!r}")
    return height, width


def format_value(value) -> str:
    """A value as the CLI writes it: ``(1, 60)`` → ``1x60``, ``0.005`` → ``0.005``."""
    if isinstance(value, (tuple, list)):
        return "x".join(str(int(v)) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _int_in(text: str, high: int, what: str, allowed: str) -> int:
    """``text`` as an integer in 1..``high``, else :class:`ConfigError`: "``what`` must be
    an integer in 1..high ``allowed``, got ``text``"."""
    try:
        value = int(str(text).strip())
    except ValueError:
        value = 0
    if not 1 <= value <= high:
        raise ConfigError(f"{what} must be an integer in 1..{high}{allowed}, got {text!r}")
    return value


def parse_patch_frames(text: str) -> int:
    """``"160"`` → 160: a patch width in frames (:class:`ConfigError` naming ``text``)."""
    return _int_in(text, LIMITS.max_patch_frames, "patch frames",
                   f" (paper: {FRONT_END.patch_frames})")


#: How the paper's input (no tempo normalisation) is written for ``--frames-per-beat``.
BEATS_OFF = "off"


def parse_frames_per_beat(text: str) -> int | None:
    """``"10"`` → 10, ``"off"`` → None (the paper's frames): frames per beat of a
    beat-synchronous input (:class:`ConfigError` naming ``text``)."""
    if str(text).strip().lower() == BEATS_OFF:
        return None
    return _int_in(text, LIMITS.max_frames_per_beat, "frames per beat", f" or {BEATS_OFF!r}")


def _show_frames_per_beat(value) -> str:
    return BEATS_OFF if value is None else str(int(value))


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        values = ()
    if not values:
        raise ConfigError(f"takes comma-separated integers like 0,3, got {text!r}")
    return values


def _format_int_list(values) -> str:
    return ",".join(str(int(v)) for v in values)


def parse_list(text: str, *, name: str, item: Callable[[str], object]) -> list:
    """``"a,b,c"`` → ``[item("a"), item("b"), item("c")]``; :class:`ConfigError` on a bad one
    or a value given twice."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not parts:
        raise ConfigError(f"{name} got no value in {text!r}")
    values = []
    for part in parts:
        try:
            values.append(item(part))
        except (ValueError, TfcnnError):
            raise ConfigError(f"{name}: cannot read {part!r} in {text!r}") from None
    if len(set(values)) != len(values):
        raise ConfigError(f"{name} lists a value twice: {text!r}")
    return values


# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Option:
    """How one field of :class:`RunRequest` reads and writes on the command line.

    Attributes
    ----------
    flag : str or None
        ``--folds``; None for the positional ``DATA_DIR``.
    help : str
    parse, show : callable
        Text → value and value → text.
    metavar : str, optional
    switch : bool
        A flag without a value (``--amp``).
    sweep : {"fixed", "grid", None}
        In ``sweep``: one value like ``train`` (fixed), a comma-separated list of values to
        sweep (grid, under ``grid_flag`` with ``grid_help``), or not an option (None).
    """

    flag: str | None
    help: str
    parse: Callable[[str], object] = str
    show: Callable[[object], str] = format_value
    metavar: str | None = None
    switch: bool = False
    sweep: str | None = "fixed"
    grid_flag: str | None = None
    grid_help: str = ""


def _option(default, flag, help, **kwargs):
    return field(default=default, metadata={"option": Option(flag, help, **kwargs)})


_WIDTH = FRONT_END.patch_frames


@dataclass(frozen=True)
class RunRequest:
    """One cross-validation of one architecture on one data set: everything that decides
    what is trained (where it is written, and how many threads train it, are not part of it).

    Made once and checked then (:class:`ConfigError` naming the bad value); architecture
    parameters left None are the architecture's own (the paper's) and are filled in, so two
    requests that train the same model compare equal.

    Attributes
    ----------
    data_dir : str
        The data set folder (made absolute).
    arch : str
        One of :data:`tfcnn.config.ARCHS`.
    n_folds : int
        K of the K-fold cross-validation (paper: 10).
    preset : str
        Training recipe from :data:`tfcnn.config.PRESETS`.
    protocol : str
        Fold protocol and normalisation (:mod:`tfcnn.folds`): ``clean`` or ``paper``.
    device : str
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (checked where the run starts:
        a request may be made on another machine).
    seed : int
        Seeds folds, model init, dropout and data order.
    epochs, lr, batch_size : optional
        The preset's max epochs, learning rate and minibatch size, replaced (None: the
        preset's; a value equal to the preset's is stored as None).
    amp : bool
        bfloat16 where it pays.
    patch_frames : int, optional
        Width of the model's input patch in frames (None: the paper's 80, ≈ 1.86 s). An
        architecture parameter: the model's layers are sized by it, and a filter may be as
        wide as it.
    frames_per_beat : int, optional
        None (default, the paper's input): patches of the log-mel's frames. Else the log-mel
        is resampled so one beat of the track's estimated tempo spans this many frames, at
        training and prediction alike (:func:`tfcnn.features.model_input`); 10 puts 8
        beats in an 80-frame patch.
    time_filter, freq_filter : (int, int), optional
        Filter shapes (bands × frames) of the architectures that have them.
    n_filters : int, optional
        Filters per convolution.
    only_folds : tuple of int, optional
        Train only these folds (0-based).
    snapshots : tuple of int, optional
        Also keep the weights at these epochs of fold 0 (or of ``only_folds``).
    """

    data_dir: str = _option(None, None, "data set folder", metavar="DATA_DIR")
    arch: str = _option(None, "--arch", ", ".join(ARCHS))
    n_folds: int = _option(10, "--folds", "number of folds K (default 10)", parse=int)
    preset: str = _option("quick", "--preset",
                          f"training recipe: {' | '.join(PRESETS)} (default quick)")
    protocol: str = _option("clean", "--protocol",
                            f"{' | '.join(PROTOCOLS)}: clean (stratified, train-only "
                            "normalisation; default) or paper (as the original code)")
    device: str = _option("auto", "--device", "auto (cuda, mps, cpu), cpu, cuda, mps")
    seed: int = _option(0, "--seed", "random seed (default 0)", parse=int, sweep="grid",
                        grid_flag="--seeds", metavar="S",
                        grid_help="seeds, one cross-validation each (default 0)")
    epochs: int | None = _option(None, "--epochs", "override the preset's max epochs",
                                 parse=int)
    lr: float | None = _option(None, "--lr", "override the initial learning rate",
                               parse=float)
    batch_size: int | None = _option(None, "--batch-size", "override the minibatch size",
                                     parse=int)
    amp: bool = _option(False, "--amp", "bfloat16 where it pays: autocast on CUDA, and the "
                        "fold-parallel kernel's products on CPUs with native bf16 "
                        "(AVX512-BF16, AMX)", switch=True)
    patch_frames: int | None = _option(
        None, "--patch-frames", f"width of the input patch in frames (paper: {_WIDTH} "
        f"≈ {FRONT_END.patch_seconds:.2f} s; e.g. 160 or 240 for more than one bar)",
        parse=parse_patch_frames, metavar="N", sweep="grid",
        grid_help=f"patch widths to sweep, in frames, e.g. {_WIDTH},160,240")
    frames_per_beat: int | None = _option(
        None, "--frames-per-beat", "tempo-normalised (beat-synchronous) input: resample each "
        "track's log-mel so one beat of its estimated tempo spans N frames, e.g. 10 (8 beats "
        f"in an {_WIDTH}-frame patch); {BEATS_OFF} (default): the paper's frames",
        parse=parse_frames_per_beat, show=_show_frames_per_beat, metavar="N", sweep="grid",
        grid_help=f"frames per beat to sweep, e.g. {BEATS_OFF},10 ({BEATS_OFF}: the paper's "
        "frames)")
    time_filter: tuple[int, int] | None = _option(
        None, "--time-filter", "temporal filter shape, bands x frames (paper: 1x60; at most "
        f"as wide as the patch, {_WIDTH} frames unless --patch-frames)",
        parse=parse_filter_shape, metavar="HxW",
        sweep="grid", grid_help="temporal filter shapes to sweep, bands x frames, e.g. "
        f"1x30,1x60,1x80 (at most the patch's width, {_WIDTH} unless --patch-frames)")
    freq_filter: tuple[int, int] | None = _option(
        None, "--freq-filter", "frequency filter shape, bands x frames (paper: 32x1)",
        parse=parse_filter_shape, metavar="HxW", sweep="grid",
        grid_help="frequency filter shapes to sweep, bands x frames, e.g. 20x1,32x1")
    n_filters: int | None = _option(
        None, "--n-filters", "filters per convolution branch (paper: 32)", parse=int,
        metavar="N", sweep="grid",
        grid_help="numbers of filters per convolution branch to sweep, e.g. 16,32")
    only_folds: tuple[int, ...] | None = _option(
        None, "--only-folds", "train only these folds (0-based), e.g. 0,3", parse=_int_list,
        show=_format_int_list, metavar="I,J", sweep=None)
    snapshots: tuple[int, ...] | None = _option(
        None, "--snapshots", "also keep the weights at these epochs (0 = initial) of fold 0, "
        "or of --only-folds, in RUN_DIR/snapshots/ (for `filters RUN_DIR --growth`)",
        parse=_int_list, show=_format_int_list, metavar="E,E", sweep=None)

    def __post_init__(self) -> None:
        if self.data_dir is None or not str(self.data_dir).strip():
            raise ConfigError("a run needs a data set folder")
        self._set("data_dir", str(Path(self.data_dir).expanduser().resolve()))
        if self.arch not in ARCHS:
            raise ConfigError(
                f"unknown architecture {self.arch!r}; valid architectures: {', '.join(ARCHS)}")
        if self.preset not in PRESETS:
            raise ConfigError(
                f"unknown preset {self.preset!r}; valid presets: {', '.join(PRESETS)}")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(
                f"unknown protocol {self.protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
        if not _is_int(self.n_folds) or self.n_folds < 2:
            raise ConfigError(f"n_folds must be an integer >= 2, got {self.n_folds!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError(f"device must be a name like 'auto', 'cpu', 'cuda', "
                              f"got {self.device!r}")
        if self.epochs is not None and not _is_int(self.epochs):
            raise ConfigError(f"epochs must be an integer, got {self.epochs!r}")
        self._set("amp", bool(self.amp))
        base = PRESETS[self.preset]
        self.train_config()  # epochs, lr and batch size as TrainConfig checks them
        for name, key in (("epochs", "max_epochs"), ("lr", "lr"), ("batch_size", "batch_size")):
            if getattr(self, name) == getattr(base, key):
                self._set(name, None)  # the preset's own value: one way to say it
        if self.only_folds is not None:
            folds = tuple(sorted({int(f) for f in self.only_folds}))
            if not folds or not 0 <= folds[0] <= folds[-1] < self.n_folds:
                raise ConfigError(f"only_folds must be fold indices in 0..{self.n_folds - 1}, "
                                  f"got {list(self.only_folds)!r}")
            self._set("only_folds", folds)
        if self.snapshots is not None:
            epochs = tuple(sorted({int(e) for e in self.snapshots}))
            if not epochs or epochs[0] < 0:
                raise ConfigError(f"snapshots must be epochs >= 0, got {list(self.snapshots)!r}")
            self._set("snapshots", epochs)
        if self.frames_per_beat is not None and not _is_int(self.frames_per_beat):
            raise ConfigError(f"frames_per_beat must be an integer or None, got "
                              f"{self.frames_per_beat!r}")
        for name, value in resolved_arch_params(self.arch, self.arch_params).items():
            self._set(name, value)
        self.front_end()  # frames_per_beat as FrontEnd checks it

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # frozen: only while it is being made

    # ---- what it asks for

    @property
    def arch_params(self) -> dict:
        """The architecture parameters it sets (``{"time_filter": (1, 60), ...}``)."""
        return {name: getattr(self, name) for name in ARCH_PARAMS
                if getattr(self, name) is not None}

    def front_end(self) -> FrontEnd:
        """The paper's front end with this request's input: patch width and
        beat-synchronous frames (what the run's checkpoints record and predict uses)."""
        return FrontEnd(**{**FRONT_END.to_dict(),
                           "patch_frames": self.patch_frames or FRONT_END.patch_frames,
                           "frames_per_beat": self.frames_per_beat})

    def train_config(self) -> TrainConfig:
        """The preset with this request's replacements and seed (:class:`ConfigError` for a
        value the recipe refuses)."""
        return PRESETS[self.preset].with_overrides(
            max_epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
            amp=True if self.amp else None, seed=self.seed)

    @property
    def folds(self) -> list[int]:
        """The folds to train: ``only_folds``, else all ``n_folds``."""
        return list(self.only_folds) if self.only_folds is not None else list(
            range(self.n_folds))

    def replace(self, **changes) -> "RunRequest":
        """A copy with ``changes`` (checked again). An architecture change resets the filter
        parameters to the new one's own (the patch width is kept)."""
        if "arch" in changes and changes["arch"] != self.arch:
            changes = {**{name: None for name in ARCH_PARAMS if name != "patch_frames"},
                       **changes}
        return replace(self, **changes)

    # ---- the command line

    def argv(self, *, without: Sequence[str] = ()) -> list[str]:
        """The ``python -m tfcnn train`` arguments that make this request again (the fields
        named in ``without`` left out)."""
        args = [self.data_dir]
        for f, option in _options():
            value = getattr(self, f.name)
            if option.flag is None or value is None or value is False or f.name in without:
                continue
            args += [option.flag] if option.switch else [option.flag, option.show(value)]
        return args

    @classmethod
    def from_args(cls, args) -> "RunRequest":
        """The request argparse results describe (``train``'s options, :func:`options`)."""
        return cls(**{f.name: getattr(args, f.name) for f, _ in _options()
                      if hasattr(args, f.name)})

    # ---- config.json

    def to_config(self) -> dict:
        """The request's part of a run folder's ``config.json`` (the trainer adds the data
        set, the resolved model and the machine)."""
        return {"data": self.data_dir, "arch": self.arch, "preset": self.preset,
                "train_config": self.train_config().to_dict(), "protocol": self.protocol,
                "n_folds": self.n_folds,
                "only_folds": None if self.only_folds is None else list(self.only_folds),
                "seed": self.seed, "device": self.device,
                "frames_per_beat": self.frames_per_beat}

    @classmethod
    def from_config(cls, config: dict) -> "RunRequest":
        """The request a run folder's ``config.json`` was trained from.

        Raises
        ------
        ConfigError
            A config naming a preset, architecture or value this code does not know.
        """
        train = config.get("train_config") or {}
        params = config.get("arch_params") or {}
        snapshots = (config.get("snapshots") or {}).get("epochs")
        beats = config.get("frames_per_beat", (config.get("front_end") or {}).get(
            "frames_per_beat"))
        return cls(data_dir=config.get("data") or "", arch=config.get("arch"),
                   n_folds=config.get("n_folds", 0), preset=config.get("preset"),
                   protocol=config.get("protocol"), device=str(config.get("device", "auto")),
                   seed=config.get("seed", 0), epochs=train.get("max_epochs"),
                   lr=train.get("lr"), batch_size=train.get("batch_size"),
                   amp=bool(train.get("amp")), only_folds=config.get("only_folds"),
                   snapshots=snapshots, frames_per_beat=beats,
                   **{k: _frozen(params[k]) for k in ARCH_PARAMS if k in params})


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _frozen(value):
    """JSON lists back to tuples (filter shapes)."""
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else value


def _options() -> list[tuple[object, Option]]:
    return [(f, f.metadata["option"]) for f in fields(RunRequest)]


def show_value(name: str, value) -> str:
    """A field's value as the CLI writes it (``(1, 60)`` → ``1x60``, a
    ``frames_per_beat`` of None → ``off``)."""
    return next(option for f, option in _options() if f.name == name).show(value)


def options() -> list[tuple[str, Option, object]]:
    """Every field of :class:`RunRequest` as ``(name, Option, default)``, in field order: what
    the CLI turns into ``train``'s and ``sweep``'s options (:mod:`tfcnn.commands.options`)."""
    return [(f.name, option, f.default) for f, option in _options()]


#: The architecture parameters a request may set, in the order they name a sweep's grid point
#: (the patch's width sizes every architecture's layers).
ARCH_PARAMS: tuple[str, ...] = ("patch_frames", "time_filter", "freq_filter", "n_filters")

#: What a sweep's grid may vary besides the seed: the architecture parameters and the input.
SWEPT_PARAMS: tuple[str, ...] = (*ARCH_PARAMS, "frames_per_beat")


def resolved_arch_params(arch: str, params: dict) -> dict:
    """Every parameter of :data:`ARCH_PARAMS` that ``arch`` takes, with its value: ``params``
    where given, else the architecture's own; checked by building the model.

    Raises
    ------
    ConfigError
        A parameter the architecture does not take, or a value that does not fit.
    """
    # torch: loaded only once a request is made, so `--help` and argument errors stay fast
    from tfcnn.models import arch_param_names, resolve_arch_params

    taken = [name for name in ARCH_PARAMS if name in arch_param_names(arch)]
    foreign = [name for name in params if name not in taken]
    if foreign:
        raise ConfigError(f"architecture {arch!r} has no {foreign[0]}; it takes "
                          f"{', '.join(taken) or 'none of them'}")
    resolved = resolve_arch_params(arch, **{k: v for k, v in params.items() if v is not None})
    return {name: _frozen(resolved[name]) for name in taken}


# ----------------------------------------------------------------------------- sweeps

#: Short tags of the swept parameters in grid point names (``t1x60-n16-s0``).
_TAGS = {"patch_frames": "p", "time_filter": "t", "freq_filter": "f", "n_filters": "n",
         "frames_per_beat": "b"}


@dataclass(frozen=True)
class GridPoint:
    """One cross-validation of a sweep: architecture parameters and a seed.

    Attributes
    ----------
    params : tuple of (name, value)
        Swept parameters in :data:`SWEPT_PARAMS` order; shapes as int tuples,
        ``frames_per_beat`` None for the paper's frames.
    seed : int
    """

    params: tuple[tuple[str, object], ...]
    seed: int

    @property
    def name(self) -> str:
        """Its run folder's name, e.g. ``t1x60-n16-s0``, ``p160-boff-s0``."""
        parts = [f"{_TAGS[k]}{show_value(k, v)}" for k, v in self.params]
        return "-".join([*parts, f"s{self.seed}"])

    @property
    def arch_params(self) -> dict:
        """The point's swept values as request fields (``frames_per_beat`` included)."""
        return dict(self.params)

    def to_dict(self) -> dict:
        return {"params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params},
                "seed": self.seed}

    @classmethod
    def from_dict(cls, data: dict) -> "GridPoint":
        params = data["params"]
        return cls(params=tuple((k, _frozen(params[k])) for k in SWEPT_PARAMS if k in params),
                   seed=int(data["seed"]))


@dataclass(frozen=True)
class Task:
    """One fold of one grid point: the unit a sweep engine schedules."""

    point: GridPoint
    fold: int

    @property
    def key(self) -> str:
        """``<point>/fold-XX``: the task's name in events and messages."""
        return f"{self.point.name}/fold-{self.fold:02d}"


@dataclass(frozen=True)
class SweepRequest:
    """A grid of architecture parameters and inputs × seeds over one :class:`RunRequest`.

    Every grid point is ``base`` with the point's values and seed
    (:meth:`request`), checked when the sweep is made: a shape that does not fit is refused
    before anything runs.

    Attributes
    ----------
    base : RunRequest
        Everything but the swept values and the seed; its architecture parameters and input
        are the paper's (a fixed non-default value is a grid of one value).
    grid : tuple of (name, tuple of values)
        The swept parameters (a subset of :data:`SWEPT_PARAMS`, in that order).
    seeds : tuple of int
    """

    base: RunRequest
    grid: tuple[tuple[str, tuple], ...] = ()
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        seeds = list(self.seeds)
        if not seeds or any(not _is_int(s) or s < 0 for s in seeds):
            raise ConfigError(f"seeds must be integers >= 0, got {seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds lists a seed twice: {seeds!r}")
        given = dict(self.grid)
        unknown = [name for name in given if name not in SWEPT_PARAMS]
        if unknown:
            raise ConfigError(f"cannot sweep {unknown[0]}; a sweep varies "
                              f"{', '.join(SWEPT_PARAMS)} and the seed")
        accepted = self.base.arch_params
        grid = []
        for name in SWEPT_PARAMS:
            if given.get(name) is None:
                continue
            if name in ARCH_PARAMS and name not in accepted:
                raise ConfigError(
                    f"architecture {self.base.arch!r} has no {name}; it takes "
                    f"{', '.join(p for p in ARCH_PARAMS if p in accepted) or 'none of them'}")
            values = tuple(_frozen(v) for v in given[name])
            if not values:
                raise ConfigError(f"{name}: no value to sweep")
            grid.append((name, values))
        base = self.base.replace(seed=seeds[0], only_folds=None, snapshots=None,
                                 **{name: None for name in SWEPT_PARAMS})
        if base != self.base.replace(seed=seeds[0], only_folds=None, snapshots=None):
            raise ConfigError("a sweep's fixed architecture parameters and input are the "
                              "paper's; sweep a list of one value to change one")
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "grid", tuple(grid))
        object.__setattr__(self, "seeds", tuple(seeds))
        for point in self.points():
            if point.seed == seeds[0]:
                self.request(point)  # a shape that does not fit is refused now

    def points(self) -> list[GridPoint]:
        """Every grid point: the product of the swept values, then the seeds."""
        names = [name for name, _ in self.grid]
        return [GridPoint(params=tuple(zip(names, values)), seed=seed)
                for values in itertools.product(*(vals for _, vals in self.grid))
                for seed in self.seeds]

    def tasks(self) -> list[Task]:
        """Every (grid point, fold), grid point by grid point."""
        return [Task(point, fold) for point in self.points()
                for fold in range(self.base.n_folds)]

    def request(self, point: GridPoint, **changes) -> RunRequest:
        """The run of grid point ``point`` (with ``changes``, e.g. ``only_folds``)."""
        return self.base.replace(seed=point.seed, **point.arch_params, **changes)

    # ---- the command line

    def argv(self) -> list[str]:
        """The ``python -m tfcnn sweep`` arguments that make this sweep again."""
        swept = {f.name: option for f, option in _options() if option.sweep == "grid"}
        args = self.base.argv(without=swept)
        for name, values in (*self.grid, ("seed", self.seeds)):
            option = swept[name]
            args += [option.grid_flag or option.flag, ",".join(option.show(v) for v in values)]
        return args

    @classmethod
    def from_args(cls, args) -> "SweepRequest":
        """The sweep argparse results describe (``sweep``'s options, :func:`options`)."""
        values = {f.name: getattr(args, f.name) for f, option in _options()
                  if option.sweep is not None and hasattr(args, f.name)}
        seeds = values.pop("seed") or [0]
        grid = tuple((name, tuple(values.pop(name))) for name in SWEPT_PARAMS
                     if values.get(name) is not None)
        for name in SWEPT_PARAMS:
            values.pop(name, None)
        return cls(base=RunRequest(**values), grid=grid, seeds=tuple(seeds))

    @classmethod
    def from_text(cls, base: RunRequest, *, grid: dict[str, str], seeds: str) -> "SweepRequest":
        """The sweep of the app's text fields: ``grid`` maps swept parameters to lists as on
        the command line (``{"time_filter": "1x30,1x60"}``, ``{"frames_per_beat":
        "off,10"}``; empty text: not swept)."""
        options = {f.name: option for f, option in _options()}
        parsed = tuple((name, tuple(parse_list(text, name=name.replace("_", " "),
                                               item=options[name].parse)))
                       for name, text in grid.items() if str(text).strip())
        return cls(base=base.replace(**{name: None for name in SWEPT_PARAMS}), grid=parsed,
                   seeds=tuple(parse_list(seeds, name="seeds", item=int)))

    # ---- sweep.json

    def to_dict(self) -> dict:
        """The sweep's ``sweep.json``."""
        b = self.base
        overrides = {k: v for k, v in (("amp", True if b.amp else None),
                                       ("batch_size", b.batch_size), ("lr", b.lr),
                                       ("max_epochs", b.epochs)) if v is not None}
        return {"data": b.data_dir, "arch": b.arch,
                "grid": {k: [list(v) if isinstance(v, tuple) else v for v in vals]
                         for k, vals in self.grid},
                "seeds": list(self.seeds), "n_folds": b.n_folds, "preset": b.preset,
                "protocol": b.protocol, "device": b.device, "overrides": overrides}

    @classmethod
    def from_dict(cls, data: dict) -> "SweepRequest":
        overrides = data.get("overrides") or {}
        base = RunRequest(data_dir=str(data["data"]), arch=str(data["arch"]),
                          n_folds=int(data["n_folds"]), preset=str(data["preset"]),
                          protocol=str(data["protocol"]), device=str(data["device"]),
                          epochs=overrides.get("max_epochs"), lr=overrides.get("lr"),
                          batch_size=overrides.get("batch_size"),
                          amp=bool(overrides.get("amp")))
        grid = data.get("grid") or {}
        return cls(base=base, grid=tuple((k, tuple(grid[k])) for k in SWEPT_PARAMS if k in grid),
                   seeds=tuple(int(s) for s in data["seeds"]))
