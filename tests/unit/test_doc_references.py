"""Every document the repository names is in the repository: no dangling `docs/*.md`, and no citation of
reference notes kept outside it (Victron quirks are cited by public repository, file and commit instead)."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO_ROOT

DOC_PATH = re.compile(r"\bdocs/[A-Za-z0-9_-]+\.md\b")
OUTSIDE_NOTES = re.compile(r"\bvictron\.md\b")


def _tracked_text() -> dict[str, str]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    out = {}
    for name in names:
        if name.startswith("tests/"):
            continue  # tests may name missing files on purpose
        try:
            out[name] = (REPO_ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
    return out


def test_when_a_file_names_a_doc_then_that_doc_exists() -> None:
    dangling = sorted(
        f"{name}: {ref}"
        for name, text in _tracked_text().items()
        for ref in set(DOC_PATH.findall(text))
        if not (REPO_ROOT / ref).is_file()
    )
    assert dangling == []


def test_when_the_gx_is_described_then_no_notes_outside_the_repository_are_cited() -> None:
    cited = sorted(name for name, text in _tracked_text().items() if OUTSIDE_NOTES.search(text))
    assert cited == []
