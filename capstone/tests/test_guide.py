"""The guide (`guide/`) quotes the code as it is: a quote that no longer matches fails here.

A fenced block right after `<!-- quote: PATH -->` must appear in PATH (from `capstone/`)
as it is; a line of `...` stands for lines left out, and the pieces between must come in
the file in that order.
"""

import re
from pathlib import Path

import pytest

CAPSTONE = Path(__file__).resolve().parent.parent
GUIDE = CAPSTONE / "guide"
QUOTE = re.compile(r"<!-- quote: (?P<path>\S+) -->\n```\w*\n(?P<code>.*?)\n```", re.DOTALL)
PARTS = sorted(GUIDE.glob("[0-9][0-9]-*.md"))


def quotes(part: Path) -> list[tuple[str, str]]:
    return [(m["path"], m["code"]) for m in QUOTE.finditer(part.read_text(encoding="utf-8"))]


def missing_piece(code: str, source: str) -> str | None:
    """The first piece of the quote not found in the source, in order; None if all are."""
    pieces, lines = [], []
    for line in [*code.splitlines(), "..."]:
        if line.strip() == "...":
            pieces.append("\n".join(lines))
            lines = []
        else:
            lines.append(line)
    start = 0
    for piece in filter(None, pieces):
        found = source.find(piece, start)
        if found < 0:
            return piece
        start = found + len(piece)
    return None


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.stem)
def test_every_quote_matches_the_code(part: Path) -> None:
    found = quotes(part)
    assert found, f"{part.name} quotes no code"
    for path, code in found:
        source = CAPSTONE / path
        assert source.is_file(), f"{part.name} quotes {path}, which does not exist"
        piece = missing_piece(code, source.read_text(encoding="utf-8"))
        assert piece is None, f"{part.name}: not in {path} as quoted:\n{piece}"


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.stem)
def test_every_part_has_its_sections(part: Path) -> None:
    headings = re.findall(r"^## (.+)$", part.read_text(encoding="utf-8"), re.MULTILINE)
    assert headings == ["The code", "Try it", "Exercises", "The tests that pin it"]


def test_the_guide_lists_every_part() -> None:
    index = (GUIDE / "README.md").read_text(encoding="utf-8")
    assert [part.name for part in PARTS] == re.findall(r"\]\(([0-9][0-9]-[\w-]+\.md)\)", index)[
        : len(PARTS)
    ]


def test_a_changed_quote_fails() -> None:
    source = "def f() -> int:\n    x = 1\n    return x\n"
    assert missing_piece("def f() -> int:\n...\n    return x", source) is None
    assert missing_piece("    return x\n...\ndef f() -> int:", source) == "def f() -> int:"
    assert missing_piece("    x = 2", source) == "    x = 2"
