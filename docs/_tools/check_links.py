"""Check every internal link of the built HTML site: the file exists, and so does the anchor.

Usage: ``python docs/_tools/check_links.py docs/_build/html``. Every ``href``, ``src`` and
``data`` attribute that stays inside the site (no scheme, not protocol-relative) must name an
existing file; a fragment must name an ``id`` (or ``name``) in the target page. External links
are not fetched, so the check needs no network. Exits 1 and lists every broken link otherwise.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

_LINK_ATTRS = {"href", "src", "data"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (name == "name" and tag == "a"):
                self.ids.add(value)
            elif name in _LINK_ATTRS and tag != "base":
                self.links.append(value)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def broken_links(site: Path) -> list[str]:
    """Every broken internal link of the site, as ``page: link (why)``."""
    site = site.resolve()
    pages = {path: _parse(path) for path in sorted(site.rglob("*.html"))}
    problems: list[str] = []
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                continue  # external (http, https, mailto, data, javascript): not checked here
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(site)}: {link}"
            if not target.is_relative_to(site):
                problems.append(f"{where} (leaves the site)")
            elif not target.exists():
                problems.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{where} (no anchor #{parts.fragment})")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_links.py BUILT_HTML_DIR", file=sys.stderr)
        return 2
    site = Path(argv[0])
    if not (site / "index.html").is_file():
        print(f"{site} is not a built HTML site (no index.html)", file=sys.stderr)
        return 2
    problems = broken_links(site)
    count = sum(len(_parse(p).links) for p in site.rglob("*.html"))
    for problem in problems:
        print(problem)
    print(f"internal link check: {count} links in {len(list(site.rglob('*.html')))} pages,"
          f" {len(problems)} broken")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
