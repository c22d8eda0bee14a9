"""The documentation holds together: a short README that links every page of docs/, no broken
relative link (anchors included) in the README, docs/ and the config READMEs, and every `make`
target the README names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README, *DOCS, REPO / "config" / "README.md", REPO / "config" / "profiles" / "README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, with code spans removed."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return lines


def _code(text: str) -> list[str]:
    """The lines of fenced code blocks and the contents of code spans."""
    code, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            code.extend(re.findall(r"`([^`]*)`", line))
    return code


def _links(page: Path) -> list[str]:
    return [target for line in _prose(page.read_text()) for target in LINK.findall(line)]


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of the headings of `page`: lower case, punctuation dropped, spaces as
    hyphens, a repeated anchor numbered -1, -2, ..."""
    anchors: set[str] = set()
    for line in _prose(page.read_text().replace("`", "")):
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1)).strip().lower()
            slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
            candidate, n = slug, 0
            while candidate in anchors:
                n += 1
                candidate = f"{slug}-{n}"
            anchors.add(candidate)
    return anchors


def test_the_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move the rest into docs/"


def test_every_docs_page_is_linked_from_the_readme():
    assert DOCS, "docs/ has no pages"
    linked = {(README.parent / target.split("#")[0]).resolve() for target in _links(README) if "://" not in target}
    missing = [page.name for page in DOCS if page.resolve() not in linked]
    assert not missing, f"docs pages not linked from README.md: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_and_their_anchors_exist(page):
    assert page.is_file(), page
    broken = []
    for target in _links(page):
        if re.match(r"[a-z][a-z+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file or directory")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_the_make_targets_the_readme_names_exist():
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", makefile, flags=re.M))
    named = {m.group(1) for line in _code(README.read_text()) if (m := re.match(r"\s*make\s+([A-Za-z][\w-]*)", line))}
    assert {"run", "test"} <= named, named
    assert named <= targets, f"README names make targets the Makefile lacks: {sorted(named - targets)}"


def test_the_paper_table_has_its_markers_on_the_docs_page():
    from lensllm.report import paper

    text = (REPO / paper.DOCS_PAGE).read_text()
    assert text.count(paper.TABLE_BEGIN) == 1 and text.count(paper.TABLE_END) == 1
    assert paper.page_table(text).startswith("| ratio | ")
