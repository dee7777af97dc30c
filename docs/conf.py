"""Sphinx configuration of the tokenproviders documentation site.

Build it with ``nox -s docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``,
then the internal link check and the doctests). Pages are Markdown (MyST); the API reference is
autodoc over ``tokenproviders.__all__``; the CLI reference is sphinx-click over the click app;
the resolution-order diagram is graphviz rendered to SVG at build time (no JavaScript, no CDN).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import tokenproviders  # noqa: E402  (the installed project, never a copy of its source)

project = "tokenproviders"
author = "The tokenproviders developers"
copyright = "The tokenproviders developers, MIT licence"
release = version = tokenproviders.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.graphviz",
    "sphinx.ext.doctest",
    "sphinx_click",
    "tokenproviders_docs",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
# plugin-authors.md and examples/ belong to the plugin kit: they are pulled into the site by
# {include} from plugins/authoring.md and plugins/example.md, never built as pages of their own.
exclude_patterns = ["_build", "_ext", "snippets", "plugin-authors.md", "examples", "**/.pytest_cache"]
templates_path: list[str] = []

myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

# Autodoc: document what the package really exports, in source order, with typed signatures.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Graphviz: SVG files rendered by Debian's `dot`, so the diagram needs no JavaScript.
graphviz_output_format = "svg"
graphviz_dot_args = ["-Gfontname=sans-serif", "-Nfontname=sans-serif", "-Efontname=sans-serif"]

# Doctests: docstring examples of autodoc'd objects and ``{doctest}`` blocks in pages.
# Docstring examples use the public names unqualified, as a reader would after this import.
doctest_global_setup = "import tokenproviders\nfrom tokenproviders import *"
# The pages' doctests import their worlds from docs/snippets (which tests/docs also runs).
doctest_path = [str(DOCS / "snippets")]

html_theme = "furo"
html_title = f"tokenproviders {release}"
html_static_path = ["_static"]
html_css_files = ["tokenproviders.css"]
html_theme_options = {
    "source_repository": "",
    "navigation_with_keys": True,
}
html_show_sourcelink = False

# Internal links are checked over the built HTML by docs/_tools/check_links.py (nox -s docs):
# every href and src that stays inside the site must name an existing file and, with a
# fragment, an existing id in it. External links are not fetched (the build needs no network).
