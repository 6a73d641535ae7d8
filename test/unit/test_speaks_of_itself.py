"""The project speaks of itself only: no tracked file refers to how it was developed (numbered
work sessions or rounds, who merged what, tracker issue numbers). Say what a thing does and why;
a date or a commit hash is fine where history matters."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDINALS = "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|[0-9]+(?:st|nd|rd|th)"
PATTERNS = [
    rf"\b(?:{ORDINALS})[ -]sessions?\b",  # "fifth session", "sixth-session review", "5th session"
    r"\bsessions? [0-9]",                 # "session 3"
    r"\brounds? ?-?[0-9]",                # "round 4", "Round 5", "round-3", "rounds 2"
    r"\bthe lead\b",                      # a role ("the lead's merge")
    r"\bissues? #?[0-9]+\b",              # tracker numbers ("issue 7", "Issue 4's", "issues 5 and 7")
]
HISTORY = re.compile("|".join(f"(?:{p})" for p in PATTERNS), re.IGNORECASE)
BINARY = {".png", ".jpg", ".so", ".onnx", ".pt", ".npy", ".npz", ".pdf", ".stl", ".dae"}

#: files with such mentions that are still to be rewritten; the test fails when a file not
#: listed here has one, and when a listed file has none left (so the list only shrinks)
NOT_YET_CLEANED: set = set()


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist, a colcon copy)
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    return [ROOT / n for n in names]


def history_mentions(text: str) -> list[tuple[int, str]]:
    return [(i, m.group(0)) for i, line in enumerate(text.splitlines(), 1) for m in HISTORY.finditer(line)]


def scan() -> dict[str, list[tuple[int, str]]]:
    this = Path(__file__).resolve()
    hits = {}
    for path in tracked_files():
        if path.resolve() == this or path.suffix.lower() in BINARY or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        found = history_mentions(data.decode("utf-8", errors="replace"))
        if found:
            hits[str(path.relative_to(ROOT))] = found
    return hits


@pytest.mark.parametrize("text, found", [
    ("Round 5 (sixth session) measured why", ["Round 5", "sixth session"]),
    ("issues 5 and 7 of the sixth-session review", ["issues 5", "sixth-session"]),
    ("the round-3 value; after the lead's merge", ["round-3", "the lead"]),
    ("docs/results/mpq.md, 5th session; see issue #12", ["5th session", "issue #12"]),
    ("rounds to the nearest integer; an onnxruntime session.run; a leader node", []),
    ("the leading term; 2026-12-07, commit 7f47dc9", []),
])
def test_the_patterns(text, found):
    assert [m for _, m in history_mentions(text)] == found


def test_no_tracked_file_speaks_of_the_development_process():
    hits = scan()
    new = {f: h for f, h in hits.items() if f not in NOT_YET_CLEANED}
    cleaned = sorted(NOT_YET_CLEANED - set(hits))
    assert not new, "mentions of the development process (say what a thing does instead): " + "; ".join(
        f"{f}:{line}: {m!r}" for f, h in sorted(new.items()) for line, m in h[:5])
    assert not cleaned, f"no mention left in {cleaned}: remove them from NOT_YET_CLEANED"
