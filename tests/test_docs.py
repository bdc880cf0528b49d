"""README and docs/: a short front door whose links land, and a CLI page true to the parsers."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from scripts.cli_reference import reference
from tfcnn.__main__ import COMMANDS, build_parser

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 150

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    in_code = False
    anchors = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            anchors.add(_slug(line.lstrip("#")))
    return anchors


def _markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_readme_is_a_short_front_door():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    for must in ("make run", "make test", "make ballroom", "TFCNN_ALLOWED_ROOTS", "docs/cli.md",
                 "docs/user-guide.md"):
        assert must in text, must


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(page):
    broken = []
    for target in _LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _cli_sections() -> dict[str, str]:
    """docs/cli.md split at its ``## <command>`` headings."""
    parts = re.split(r"^## (\S+)\s*$", (DOCS / "cli.md").read_text(encoding="utf-8"),
                     flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_cli_page_lists_every_command_and_option():
    sections = _cli_sections()
    parsers = _subparsers()
    assert set(COMMANDS) <= set(parsers)
    missing = []
    for name, sub in parsers.items():
        if name not in sections:
            missing.append(f"section {name}")
            continue
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help" and \
                        f"`{option}" not in sections[name]:
                    missing.append(f"{name} {option}")
    assert not missing, f"docs/cli.md lacks {missing}"
    documented = {flag for name, text in sections.items()
                  for flag in re.findall(r"`(--[a-z][\w-]*)", text)}
    known = {o for sub in parsers.values() for a in sub._actions for o in a.option_strings}
    assert documented <= known, f"docs/cli.md names options no command has: {documented - known}"


def test_cli_page_is_written_from_the_current_parsers():
    """docs/cli.md is what `python -m scripts.cli_reference` writes (run it after changing a
    command's options)."""
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == reference()

