"""Reading JSON that came from disk: bounded in size and depth, one error line when bad.

Run folders (``config.json``, ``status.json``, ``results.json``, a fold's ``result.json``)
and checkpoint headers are files anyone with access to the folder may have edited. Python's
parser recurses once per nesting level, so ``[[[[...]]]]`` 100,000 deep ends in a
``RecursionError`` traceback, and a value of an unexpected type fails later, far from the
file. :func:`parse_json` turns both into one line naming the file.
"""

from __future__ import annotations

import json

#: Deepest nesting any tfcnn JSON file has (results.json: run → folds → matrix → row, 4).
MAX_DEPTH = 32
#: Largest JSON file read from a run folder (a results.json of 10 folds is a few KB).
MAX_JSON_BYTES = 16 * 2**20


def json_depth(value) -> int:
    """Nesting depth of a parsed JSON value (a scalar: 0; ``[1]``: 1), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item \
            if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))
        if any(not isinstance(c, (dict, list)) for c in children):
            deepest = max(deepest, depth + 1)
    return deepest


def parse_json(data: str | bytes, *, where: str, error: type[Exception],
               max_depth: int = MAX_DEPTH, max_bytes: int = MAX_JSON_BYTES):
    """The JSON value in ``data``, or ``error("<where>: <problem>")``.

    Parameters
    ----------
    data : str or bytes
        The file's text (bytes must be UTF-8).
    where : str
        The file, named in the message.
    error : exception type
        Raised with one line (e.g. :class:`tfcnn.errors.RunError`).
    max_depth, max_bytes : int
        Deeper or larger JSON is refused.
    """
    if len(data) > max_bytes:
        raise error(f"{where}: {len(data) / 2**20:.1f} MB of JSON; the limit is "
                    f"{max_bytes / 2**20:.0f} MB")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{where}: not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(data)
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply (over {max_depth} levels)") from None
    except ValueError as exc:
        raise error(f"{where}: not valid JSON ({exc})") from None
    if json_depth(value) > max_depth:
        raise error(f"{where}: JSON nested too deeply (over {max_depth} levels)")
    return value
