"""Sphinx glue for the tokenproviders site: what the pages say is read from the installed code.

- ``{tracker-type} NAME``: a tracker type's title, distribution, declared credential fields and
  service-URL rule, taken from the installed plugin (never typed by hand, so never stale).
- Optional includes: a page may ``{include}`` a file another part of the project owns
  (``plugin-authors.md``, the example plugin's README). Until that file exists the include is
  replaced by a visible note, so the build stays green while the file is being written; once it
  exists it is included as is.
- ``<!-- plugin-readme: NAME -->`` ... ``<!-- end plugin-readme -->`` in a tracker page is
  replaced by ``plugins/tokenproviders-NAME/README.md`` (its title dropped, links that leave the
  documentation turned into plain text) once that README is written; until then the block's own
  text stays.
- ``tp-fixtures MODULE``: the pytest fixtures a module exports, documented from the functions
  pytest wraps (autodoc cannot see through the wrapper).
- Cross-references written against a defining module (``tokenproviders.model.Resolution``)
  resolve to the public name the API reference documents (``tokenproviders.Resolution``).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

#: Files owned by other parts of the project that pages include once they exist.
OPTIONAL_INCLUDES = {
    "plugin-authors.md": ("Writing plugins", "the plugin-author guide (docs/plugin-authors.md)"),
    "examples/tokenproviders-youtrack/README.md": (
        "An example plugin", "the example plugin's README (docs/examples/tokenproviders-youtrack/README.md)"
    ),
}

_INCLUDE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{include\}\s+(?P<path>\S+)[^\n]*\n(?:.*?\n)*?(?P=fence)[ \t]*$",
                      re.MULTILINE)


def _optional_includes(app: Sphinx, docname: str, source: list[str]) -> None:
    srcdir = Path(app.srcdir)
    here = (srcdir / docname).parent

    def replace(match: re.Match[str]) -> str:
        target = (here / match["path"]).resolve()
        try:
            relative = target.relative_to(srcdir).as_posix()
        except ValueError:
            return match[0]
        if relative not in OPTIONAL_INCLUDES or target.exists():
            return match[0]
        title, what = OPTIONAL_INCLUDES[relative]
        return (
            f"# {title}\n\n:::{{note}}\n"
            f"This page includes {what}, which does not exist in this checkout yet.\n:::"
        )

    source[0] = _INCLUDE.sub(replace, source[0])


REPO = Path(__file__).resolve().parents[2]
_README_BLOCK = re.compile(
    r"^<!-- plugin-readme: (?P<name>[a-z0-9_-]+) -->\n(?P<fallback>.*?)^<!-- end plugin-readme -->\n?",
    re.MULTILINE | re.DOTALL,
)
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>[^)\s]+)\)")


def plugin_readme(name: str) -> str | None:
    """The README of ``plugins/tokenproviders-NAME`` ready to sit inside a page, or ``None``
    while it is missing or a placeholder."""
    path = REPO / "plugins" / f"tokenproviders-{name}" / "README.md"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if len([line for line in lines if line.strip()]) < 5:
        return None  # "# placeholder"
    if lines and lines[0].startswith("# "):
        lines = lines[1:]

    def keep_or_flatten(match: re.Match[str]) -> str:
        target = match["target"]
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            return match[0]
        return match["text"]  # a file of the repository, not a page of this site

    return _LINK.sub(keep_or_flatten, "\n".join(lines)) + "\n"


def _plugin_readmes(app: Sphinx, docname: str, source: list[str]) -> None:
    def replace(match: re.Match[str]) -> str:
        readme = plugin_readme(match["name"])
        app.env.note_dependency(str(REPO / "plugins" / f"tokenproviders-{match['name']}" / "README.md"))
        if readme is None:
            return match["fallback"]
        return readme

    source[0] = _README_BLOCK.sub(replace, source[0])


def _plugins() -> Any:
    from tokenproviders import create_plugins

    return create_plugins()


class TrackerTypeDirective(SphinxDirective):
    """Render what an installed tracker type declares: fields, distribution, service URL."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {
        "example-url": directives.unchanged,
        "example-api-url": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        from tokenproviders import Tracker, UnknownTrackerTypeError

        name = self.arguments[0]
        plugins = self.env.app.tokenproviders_plugins  # type: ignore[attr-defined]
        try:
            tracker_type = plugins.tracker_type(name)
        except UnknownTrackerTypeError:
            note = nodes.warning()
            note += nodes.paragraph(
                text=f"The tracker type {name!r} is not installed in the environment that built this"
                " page, so its declared fields are not shown here."
            )
            return [note]
        out: list[nodes.Node] = []
        dist = _distribution_of(type(tracker_type).__module__)
        summary = nodes.field_list(classes=["tracker-type-summary"])
        summary += _field("Type name", nodes.literal(text=tracker_type.name))
        summary += _field("Title", nodes.Text(tracker_type.title))
        if dist:
            summary += _field("Distribution", nodes.literal(text=f"pip install {dist[0]}"))
            summary += _field("Version", nodes.Text(dist[1]))
        example = self.options.get("example-url")
        if example:
            tracker = Tracker(tenant="acme", id="t", type=name, base_url=example,
                              api_url=self.options.get("example-api-url"))
            service = tracker_type.service_url(tracker)
            para = nodes.paragraph()
            para += nodes.Text("For a tracker at ")
            para += nodes.literal(text=tracker.url)
            if service and service != tracker.url:
                para += nodes.Text(", a personal token for the tracker URL serves that tracker only; a token for"
                                   " its service URL ")
                para += nodes.literal(text=service)
                para += nodes.Text(" serves every tracker of this type on that service.")
            else:
                para += nodes.Text(", personal tokens are matched on the tracker URL only (no service-wide token).")
            summary += _field("Service URL", para)
        out.append(summary)
        out.append(_fields_table(tracker_type))
        return out


def _field(name: str, body: nodes.Node) -> nodes.field:
    field = nodes.field()
    field += nodes.field_name(text=name)
    content = nodes.field_body()
    if isinstance(body, nodes.paragraph):
        content += body
    else:
        para = nodes.paragraph()
        para += body
        content += para
    field += content
    return field


def _fields_table(tracker_type: Any) -> nodes.table:
    headers = ("Field", "Label a form shows", "Required", "Help text")
    table = nodes.table(classes=["tracker-fields"])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in (18, 22, 10, 50):
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    row = nodes.row()
    for header in headers:
        row += nodes.entry("", nodes.paragraph(text=header))
    head += row
    group += head
    body = nodes.tbody()
    for declared in tracker_type.fields:
        row = nodes.row()
        name = nodes.paragraph()
        name += nodes.literal(text=declared.name)
        row += nodes.entry("", name)
        row += nodes.entry("", nodes.paragraph(text=declared.label))
        row += nodes.entry("", nodes.paragraph(text="required" if declared.required else "optional"))
        row += nodes.entry("", nodes.paragraph(text=declared.help or ""))
        body += row
    group += body
    return table


_YIELDED = re.compile(r"^(?:Iterator|Generator|Iterable)\[(?P<value>.+?)(?:,\s*None,\s*None)?\]$")


class FixturesDirective(SphinxDirective):
    """``.. tp-fixtures:: MODULE``: one entry per pytest fixture in ``MODULE.__all__``.

    autodoc cannot document a fixture (pytest wraps it in an object that is not a function), so
    each entry is written from the wrapped function: its parameters (the fixtures it uses), the
    value a test receives (a generator fixture's yielded type) and its docstring.
    """

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        import importlib
        import inspect

        from docutils.statemachine import StringList
        from sphinx.util.docstrings import prepare_docstring

        module = importlib.import_module(self.arguments[0])
        lines: list[str] = []
        for name in module.__all__:
            fixture = getattr(module, name)
            function = fixture._get_wrapped_function() if hasattr(fixture, "_get_wrapped_function") else fixture
            function = getattr(function, "__wrapped__", function)
            signature = inspect.signature(function)
            params = ", ".join(signature.parameters)
            returned = signature.return_annotation
            value = "" if returned is inspect.Signature.empty else str(returned)
            match = _YIELDED.match(value)
            value = match["value"] if match else value
            lines += [
                f".. py:function:: {name}({params})" + (f" -> {value}" if value else ""),
                f"   :module: {module.__name__}",
                "",
                "   A pytest fixture: a test asks for it by naming it as a parameter.",
                "",
            ]
            doc = prepare_docstring(function.__doc__ or "")
            _literal_after_summary(None, "function", name, function, None, doc)  # type: ignore[arg-type]
            lines += [f"   {line}" if line else "" for line in doc]
            lines.append("")
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.arguments[0]), self.content_offset, container)
        return list(container.children)


def _distribution_of(module: str) -> tuple[str, str] | None:
    """``(distribution, version)`` whose ``tokenproviders`` entry point lives in ``module``'s package."""
    top = module.split(".")[0]
    for ep in metadata.entry_points(group="tokenproviders"):
        if ep.value.split(":")[0].split(".")[0] == top and ep.dist is not None:
            return ep.dist.name, ep.dist.version
    return None


def _public_name(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve ``tokenproviders.module.Name`` to ``tokenproviders.Name`` when that is public."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    parts = target.split(".")
    if len(parts) < 3 or parts[0] != "tokenproviders":
        return None
    import tokenproviders

    public = {name for name in tokenproviders.__all__}
    for cut in range(len(parts) - 1, 0, -1):
        if parts[cut] in public:
            new_target = ".".join(["tokenproviders", *parts[cut:]])
            domain = env.domains["py"]
            return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], new_target, node, contnode)
    return None


def _literal_after_summary(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Re-indent a docstring whose summary line ends with ``::`` and whose rest is that block.

    ``inspect.cleandoc`` (which autodoc applies) measures the margin without the first line, so
    in such a docstring the literal block loses its indentation and docutils reads it as a
    malformed "quoted" literal block. Indenting it again restores what the author wrote.
    """
    if lines and lines[0].rstrip().endswith("::") and len(lines) > 2 and not lines[1].strip():
        body = [line for line in lines[2:] if line.strip()]
        if body and not any(line.startswith(" ") for line in body[:1]):
            lines[2:] = [("    " + line) if line.strip() else line for line in lines[2:]]


def setup(app: Sphinx) -> dict[str, Any]:
    app.tokenproviders_plugins = _plugins()  # type: ignore[attr-defined]
    app.connect("source-read", _optional_includes)
    app.connect("source-read", _plugin_readmes)
    app.connect("missing-reference", _public_name)
    app.add_directive("tracker-type", TrackerTypeDirective)
    app.add_directive("tp-fixtures", FixturesDirective)
    app.connect("autodoc-process-docstring", _literal_after_summary)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
