"""Names are data: text from disk or from a user, shown as itself in Streamlit's Markdown.

Track, folder, class, run and file names come from disk (or from whoever named an upload),
and Streamlit renders Markdown in ``st.markdown``, ``st.caption``, ``st.error`` and the
rest: a track named ``![t](https://host/beacon).wav`` would otherwise make every viewer's
browser contact that host. Every such name passes :func:`plain` (or :func:`code` inside an
inline code span) on its way to the page.
"""

from __future__ import annotations

#: Characters that start Markdown, HTML, LaTeX (``$``) or Streamlit's colour and icon
#: directives (``:red[...]``, ``:material/x:``) anywhere in a line; CommonMark lets any of
#: them be backslash-escaped.
MARKDOWN_PUNCTUATION = frozenset("\\`*_{}[]()<>!|~$:&")
#: Characters that are Markdown only at the start of a line (a list, heading, quote).
LINE_START = frozenset("-+=#>")


def plain(text: object) -> str:
    """``text`` shown as it is in Streamlit's Markdown: every Markdown character escaped
    (list, heading and numbered-list marks at its start), line breaks as spaces."""
    flat = " ".join(str(text).splitlines())
    out = "".join("\\" + c if c in MARKDOWN_PUNCTUATION else c for c in flat)
    head = len(out) - len(out.lstrip())
    digits = len(out[head:]) - len(out[head:].lstrip("0123456789"))
    mark = head + digits
    if mark < len(out) and (out[mark] in LINE_START and not digits
                            or digits and out[mark] == "."):
        out = out[:mark] + "\\" + out[mark:]
    return out


def code(text: object) -> str:
    """``text`` as one inline code span (a fence longer than any backtick run inside it)."""
    flat = " ".join(str(text).splitlines())
    run = longest = 0
    for c in flat:
        run = run + 1 if c == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"
