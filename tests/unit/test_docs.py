"""The docs a newcomer reads: every picture they show exists and is retaken by the e2e suite, and every
link between the pages (file and #section) leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _prose(page: Path) -> str:
    """The page without code, where brackets and parentheses are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", page.read_text()))


def _links(page: Path) -> list[tuple[bool, str]]:
    """(is an image, target) for every relative link of the page."""
    return [(bang == "!", target) for bang, target in LINK.findall(_prose(page))
            if not re.match(r"[a-z]+:", target)]


def _anchors(page: Path) -> set[str]:
    """Heading anchors as GitHub makes them: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", page.read_text()), re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-"))
    return anchors


def _targets(kind_is_image: bool) -> list[tuple[str, str]]:
    return [(page.relative_to(REPO).as_posix(), target)
            for page in PAGES for is_image, target in _links(page) if is_image == kind_is_image]


def test_the_docs_pages_exist():
    names = {page.name for page in PAGES}
    assert {"README.md", "configuration.md", "tape.md", "restore-and-recovery.md", "performance.md",
            "architecture.md", "security.md", "cli.md"} <= names


@pytest.mark.parametrize(("page", "target"), _targets(kind_is_image=True))
def test_every_picture_exists_and_an_e2e_test_takes_it(page, target):
    picture = (REPO / page).parent / target
    assert picture.is_file(), f"{page} shows {target}, which does not exist"
    e2e_sources = "".join(path.read_text() for path in (REPO / "tests" / "e2e").glob("*.py"))
    assert f'"{picture.name}"' in e2e_sources, f"no e2e test retakes {picture.name}, so it would go stale"


@pytest.mark.parametrize(("page", "target"), _targets(kind_is_image=False))
def test_every_link_between_pages_resolves(page, target):
    path, _, anchor = target.partition("#")
    linked = (REPO / page).parent / path if path else REPO / page
    assert linked.exists(), f"{page} links to {target}: no such file"
    if anchor:
        assert linked.suffix == ".md", f"{page} links to a section of a file that is not a page: {target}"
        assert anchor in _anchors(linked), f"{page} links to {target}: {linked.name} has no such section"


def test_the_link_checker_sees_links_and_sections():
    """Guards the regular expressions above: a check that finds nothing would pass for ever."""
    assert len(_targets(kind_is_image=False)) > 15 and len(_targets(kind_is_image=True)) >= 5
    assert "archive-formats-encryption-and-keys" in _anchors(REPO / "docs" / "backups.md")
    assert "the-polling-contract-htmx" in _anchors(REPO / "docs" / "web-ui.md")
