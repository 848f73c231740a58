"""The documentation: pages for users, linked from the README, links that resolve, and one
version in pyproject.toml, CITATION.cff, ``scalecnn.__version__`` and ``scalecnn --version``.

Each check is a function of the text it reads, and each is also run on a page that breaks
it, so that none can pass vacuously."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 130
GENERATED = {ROOT / "docs" / "reproduction.md"}  # written by rule `record`, never by hand


def docs_pages() -> list[Path]:
    """docs/*.md, sorted."""
    return sorted((ROOT / "docs").glob("*.md"))


def hand_written_pages() -> list[Path]:
    """The pages whose text a person writes: the READMEs and docs/*.md but the generated
    record (whose notes, docs/reproduction_notes.md, are checked as a page of their own)."""
    pages = [README] + [ROOT / d / "README.md" for d in ("config", "benchmarks", "profiles")]
    return pages + [p for p in docs_pages() if p not in GENERATED]


def pages_to_link() -> list[Path]:
    """Every documentation page the README's index must link to."""
    pages = docs_pages() + [ROOT / d / "README.md" for d in ("config", "profiles", "benchmarks")]
    return pages + [ROOT / "CHANGELOG.md"]


FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
LINK_TEXT = r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]"
TITLE = r"(?:\s+\"[^\"]*\")?"
INLINE_LINK = re.compile(r"!?" + LINK_TEXT + r"\(\s*<?([^)\s>]+)>?" + TITLE + r"\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?" + TITLE + r"\s*$", re.MULTILINE)


def link_targets(text: str) -> list[str]:
    """The targets of the Markdown links and images in ``text`` (inline and reference
    style), code blocks and inline code left out."""
    text = INLINE_CODE.sub("", FENCE.sub("", text))
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)


def relative_targets(text: str) -> list[str]:
    """The link targets that name a file of the repository: no URL scheme, no bare
    ``#anchor``; the anchor of ``file#anchor`` is dropped."""
    out = []
    for target in link_targets(text):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
            continue
        out.append(target.split("#", 1)[0])
    return out


def broken_links(page: Path, text: str | None = None) -> list[str]:
    """The relative link targets of ``page`` (or of ``text`` read as if at ``page``) that
    point to no existing file or folder."""
    text = page.read_text(encoding="utf-8") if text is None else text
    return [t for t in relative_targets(text) if not (page.parent / t).exists()]


def linked_files(page: Path, text: str | None = None) -> set[Path]:
    """The existing files ``page`` links to, resolved."""
    text = page.read_text(encoding="utf-8") if text is None else text
    return {(page.parent / t).resolve() for t in relative_targets(text)}


def session_mentions(text: str) -> list[int]:
    """The line numbers (1-based) that contain the word "session" in any case."""
    return [n for n, line in enumerate(text.splitlines(), 1) if re.search("session", line, re.I)]


def pyproject_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["version"]


# --- the checks on the repository's pages ---


@pytest.mark.parametrize("page", hand_written_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_narrates_the_development(page: Path) -> None:
    """The pages say what is true now; how it came about is CHANGELOG.md's."""
    assert page.is_file(), page
    lines = session_mentions(page.read_text(encoding="utf-8"))
    assert not lines, f"{page.relative_to(ROOT)}: 'session' on line(s) {lines}"


def test_the_notes_of_the_record_are_checked_as_a_page() -> None:
    assert ROOT / "docs" / "reproduction_notes.md" in hand_written_pages()
    assert not set(hand_written_pages()) & GENERATED


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = linked_files(README)
    missing = [str(p.relative_to(ROOT)) for p in pages_to_link() if p.resolve() not in linked]
    assert not missing, f"README.md does not link to {missing}"
    assert len(pages_to_link()) > 10  # docs/*.md was found


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize("page", [README, *docs_pages()], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page: Path) -> None:
    assert not broken_links(page), f"{page.relative_to(ROOT)}: broken links {broken_links(page)}"


def test_license_and_citation_exist_and_the_versions_agree() -> None:
    assert (ROOT / "LICENSE").is_file()
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0"
    assert str(citation["version"]) == pyproject_version()
    assert citation["license"] == "MIT"
    paper = citation["references"][0]
    assert "Just a Matter of Scale?" in paper["title"]
    assert paper["authors"][0]["family-names"] == "Altstidl"


def test_scalecnn_version_is_pyproject_version(capsys: pytest.CaptureFixture[str]) -> None:
    import scalecnn
    from scalecnn.cli import main

    assert scalecnn.__version__ == pyproject_version()
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"scalecnn {pyproject_version()}"


# --- each check finds what it looks for ---


def test_session_check_finds_the_word_in_any_case() -> None:
    assert session_mentions("one\nIn the third Session we\nsessions") == [2, 3]
    assert session_mentions("a sensible sequence") == []


def test_link_check_finds_broken_links_and_ignores_code_and_urls(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("x")
    page = tmp_path / "README.md"
    text = (
        "[ok](docs/here.md#anchor) ![fig](docs/missing.png) [`gone`](gone.md)\n"
        "[web](https://example.org/x.md) [top](#top) [ref]: docs/also_missing.md\n"
        "`[code](not_a_link.md)`\n"
        "```\n[block](not_a_link_either.md)\n```\n"
        "[ref2]: docs/here.md\n"
    )
    assert broken_links(page, text) == ["docs/missing.png", "gone.md"]
    assert linked_files(page, text) == {
        (tmp_path / "docs" / p).resolve() for p in ("here.md", "missing.png")
    } | {(tmp_path / "gone.md").resolve()}
    assert broken_links(page, text + "[bad]: nowhere.md\n") == [
        "docs/missing.png",
        "gone.md",
        "nowhere.md",
    ]
