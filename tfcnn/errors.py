"""The project's error types.

Every error a user can cause (a bad file, a bad value, a broken checkpoint) raises a
subclass of :class:`TfcnnError` whose message names the bad thing and the problem. The
CLI prints it as one ``error: ...`` line with exit code 2; the app shows it in ``st.error``.
"""


class TfcnnError(Exception):
    """Base class of every error the project raises on bad input."""


class AudioError(TfcnnError):
    """An audio file or buffer that cannot be used (missing, undecodable, empty, too short)."""


class DatasetError(TfcnnError):
    """A data set folder, archive or track table that cannot be read as expected."""


class CheckpointError(TfcnnError):
    """A checkpoint file that is missing, corrupt or incompatible with this code."""


class ConfigError(TfcnnError):
    """A parameter value outside its valid range (unknown architecture, bad preset, ...)."""


class RunError(TfcnnError):
    """A run folder that is missing, incomplete or inconsistent."""


class AccessError(TfcnnError):
    """A path the user may not use (outside the allowed folders, or not a regular file)."""


class AudioWarning(UserWarning):
    """Audio that is used but may not be what the user expects (e.g. a truncated WAV file)."""


class CacheWarning(UserWarning):
    """A damaged feature cache entry, recomputed (the message names its file)."""
