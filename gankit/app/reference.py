"""The recipe reference in Markdown, generated from the declared parameters.

``docs/recipes.md`` embeds this text between markers, and a test keeps the two identical,
so the reference always matches the code. Regenerate it with ``gankit plugins --markdown``.
"""

from __future__ import annotations

from typing import Mapping

from gankit.params import Param
from gankit.plugin.kinds import KINDS
from gankit.plugin.registry import Registry
from gankit.recipe.validation import EMA_PARAMS, METRICS_PARAMS, TOP_LEVEL, TRAIN_PARAMS


def _value(value) -> str:
    text = repr(value)
    for py, yml in (("None", "null"), ("True", "true"), ("False", "false")):
        text = text.replace(py, yml)
    return f"`{text}`"


def param_table(params: Mapping[str, Param]) -> str:
    """A Markdown table of parameters: key, default, what it accepts, what it means."""
    rows = ["| key | default | accepts | meaning |", "|---|---|---|---|"]
    for key, p in params.items():
        default = "*(required)*" if p.required else _value(p.default)
        rows.append(f"| `{key}` | {default} | {p.expected()} | {p.doc} |")
    return "\n".join(rows)


_SHAPES = {
    "one": "`{section}: {{type: NAME, ...}}` (or just `{section}: NAME`)",
    "list": "`{section}: [{{type: NAME, ...}}, ...]`, any number",
    "roles": "`{section}: {{{roles}}}`, one {kind} per role",
    "nested": "as the value of a parameter",
}


def _plural(word: str) -> str:
    if word.endswith("s"):
        return word + "es"
    if word.endswith("y"):
        return word[:-1] + "ies"
    return word + "s"


def render_reference(registry: Registry) -> str:
    """Every recipe key: top level, ``train``, ``ema``, and, kind by kind (in the order of
    :data:`gankit.plugin.kinds.KINDS`), each registered component's parameters."""
    parts = ["### Top level", "", param_table(TOP_LEVEL), "",
             "### `train`", "", param_table(TRAIN_PARAMS), "",
             "### `ema` (optional; leave it out or write `ema: null` for none)", "",
             param_table(EMA_PARAMS), "",
             "### `metrics` (optional; leave it out or write `metrics: null` for none)", "",
             param_table(METRICS_PARAMS)]
    for kind in KINDS:
        roles = ", ".join(f"{r}: ..." for r in kind.roles)
        where = _SHAPES[kind.shape].format(section=kind.section, roles=roles, kind=kind.name)
        default = ("" if kind.shape == "nested" else "required" if kind.required else
                   f"default {_value(kind.default)}")
        parts += ["", f"### {_plural(kind.name).capitalize()}", "",
                  f"{kind.doc[0].upper()}{kind.doc[1:]}: {where}"
                  + (f"; {default}." if default else ".")]
        for reg in (r for r in registry if r.kind == kind.name):
            parts += ["", f"#### `{kind.name}: {reg.name}` ({reg.component.__name__}, "
                          f"plugin `{reg.plugin}`, distribution `{reg.distribution}`)", "",
                      reg.summary, "", param_table(reg.component.params)]
            if reg.component.removed_params:
                parts += ["", "Refused legacy keys:", ""]
                parts += [f"- `{k}`: {v}" for k, v in reg.component.removed_params.items()]
    return "\n".join(parts) + "\n"


BEGIN = "<!-- BEGIN GENERATED REFERENCE: python -m gankit.app.reference docs/recipes.md -->"
END = "<!-- END GENERATED REFERENCE -->"


def builtin_registry() -> Registry:
    """The components gankit itself ships (third-party plugins left out)."""
    from gankit.plugin.manager import load_plugins

    full = load_plugins().registry
    only = Registry()
    for reg in full:
        if reg.distribution == "gankit":
            only.register(reg.component, reg.name, plugin=reg.plugin,
                          distribution=reg.distribution, version=reg.version)
    return only


def embedded(text: str) -> str:
    """The generated part of a document (between the markers)."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip("\n") + "\n"


def update_file(path: str) -> None:
    """Rewrite the generated part of ``path`` from the built-in components."""
    from pathlib import Path

    doc = Path(path)
    text = doc.read_text()
    head, tail = text[:text.index(BEGIN) + len(BEGIN)], text[text.index(END):]
    doc.write_text(f"{head}\n{render_reference(builtin_registry())}{tail}")


if __name__ == "__main__":
    import sys

    update_file(sys.argv[1] if len(sys.argv) > 1 else "docs/recipes.md")
