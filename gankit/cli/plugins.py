"""``gankit plugins``: the installed plugins and their components."""

from __future__ import annotations

import json
import sys

from gankit.app.train import plugins


def add_parser(sub) -> None:
    plugins = sub.add_parser("plugins", help="list installed plugins and their components")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument("--markdown", action="store_true",
                         help="print the recipe reference (every key) as Markdown")
    plugins.set_defaults(func=command)


def command(args) -> int:
    loaded = plugins(report_errors=not args.json)
    registry = loaded.registry
    if args.markdown:
        from gankit.app.reference import render_reference
        print(render_reference(registry), end="")
        return 0
    if args.json:
        data = {
            "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version,
                         "entry_point": p.entry_point, "status": p.status, "error": p.error,
                         "provides": [f"{r.kind}:{r.name}" for r in p.provides]}
                        for p in loaded.plugins],
            "warnings": loaded.warnings,
            "components": {
                kind: [{"name": r.name, "qualified_name": r.qualified_name,
                        "plugin": r.plugin, "distribution": r.distribution,
                        "version": r.version, "summary": r.summary,
                        "params": {k: {"default": p.default if not p.required else None,
                                       "required": p.required, "expected": p.expected(),
                                       "doc": p.doc}
                                   for k, p in r.component.params.items()}}
                       for r in registry if r.kind == kind]
                for kind in registry.kinds},
        }
        print(json.dumps(data, indent=2, default=str))
        return 0
    for kind in registry.kinds:
        print(f"{kind}:")
        entries = [r for r in registry if r.kind == kind]
        if not entries:
            print("  (none)")
        for r in entries:
            clash = sum(e.name == r.name for e in entries) > 1
            note = "  [name clash: recipes must write the qualified name]" if clash else ""
            print(f"  {r.name:<16} {r.qualified_name:<24} {r.distribution} {r.version}  "
                  f"{r.summary}{note}")
    print("plugins:")
    for p in loaded.plugins:
        detail = f" ({p.error})" if p.error else ""
        provides = ", ".join(f"{r.kind} {r.name}" for r in p.provides)
        print(f"  {p.name:<16} {p.distribution} {p.version}  {p.status}{detail}"
              + (f": {provides}" if provides else ""))
    for message in loaded.warnings:
        print(f"gankit: warning: {message}", file=sys.stderr)
    return 0
