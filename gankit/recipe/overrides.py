"""``--set KEY=VALUE`` on a recipe's raw data: the one parser of overrides (``gankit run``,
``resume``, ``validate`` and ``sweep`` use it; ``gankit evaluate``'s ``--set`` uses
:func:`split_override`)."""

from __future__ import annotations

import re
from typing import Any, Sequence

from gankit.errors import RecipeError
from gankit.recipe.strict_yaml import parse_yaml


def split_override(item: str) -> tuple[str, str] | None:
    """``(key, value text)`` of ``KEY=VALUE`` (the key stripped), or None when there is no
    ``=`` or no key."""
    key, sep, text = item.partition("=")
    key = _dotted(key.strip())
    return (key, text) if sep and key else None


def _dotted(key: str) -> str:
    """``regularizers[0].weight`` (as errors write key paths) as ``regularizers.0.weight``."""
    return re.sub(r"\[(\d+)\]", r".\1", key)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str], source: str = "--set") -> dict:
    """Apply ``key.path=VALUE`` overrides (values are YAML) to a copy of ``raw``.

    A section written in shorthand (``loss: hinge``) is expanded to ``{type: hinge}`` when a
    key inside it is set; a list item is addressed by its index (``regularizers.0.gamma``).
    """
    data = _deep_copy(raw)
    for item in overrides:
        split = split_override(item)
        if split is None:
            raise RecipeError(f"expected KEY=VALUE (e.g. train.steps=20), got '{item}'",
                              source=source)
        key, text = split
        parts = key.split(".")
        if any(not p for p in parts):
            raise RecipeError(f"malformed key path '{key}'", source=source)
        value = parse_yaml(text, f"{source} {key}") if text.strip() else ""
        node: Any = data
        for depth, part in enumerate(parts[:-1]):
            here = ".".join(parts[:depth + 1])
            if isinstance(node, list):
                node = _list_item(node, part, here, key, source)
                continue
            child = node.get(part)
            if child is None:
                # `--set strategy.d_steps=5` on a recipe that leaves strategy to its default
                child = node[part] = _default_section(parts[:depth + 1])
            elif isinstance(child, str) and _is_component_key(parts[:depth + 1]):
                child = node[part] = {"type": child}  # expand the shorthand
            if not isinstance(child, (dict, list)):
                raise RecipeError(f"cannot set '{key}': '{here}' is {_describe(child)}, not a "
                                  f"section", source=source)
            node = child
        if isinstance(node, list):
            index = _index(parts[-1], len(node), key, source)
            node[index] = value
        else:
            node[parts[-1]] = value
    return data


def _default_section(parts: list[str]) -> dict:
    """An absent section that a ``--set`` key goes into: the kind's default, if it has one."""
    from gankit.plugin.kinds import BY_SECTION

    kind = BY_SECTION.get(parts[0])
    if kind is None or kind.required or len(parts) != (2 if kind.shape == "roles" else 1):
        return {}
    default = kind.default
    if isinstance(default, str):
        return {"type": default}
    return _deep_copy(default) if isinstance(default, dict) else {}


def _is_component_key(parts: list[str]) -> bool:
    from gankit.plugin.kinds import BY_SECTION

    kind = BY_SECTION.get(parts[0])
    if kind is None:
        return False
    return len(parts) == (2 if kind.shape in ("roles", "list") else 1)


def _index(part: str, length: int, key: str, source: str) -> int:
    if not part.isdigit() or int(part) >= length:
        raise RecipeError(f"cannot set '{key}': '{part}' is not an index of a list of "
                          f"{length} item(s)", source=source)
    return int(part)


def _list_item(node: list, part: str, here: str, key: str, source: str) -> Any:
    index = _index(part, len(node), key, source)
    if isinstance(node[index], str):
        node[index] = {"type": node[index]}
    if not isinstance(node[index], dict):
        raise RecipeError(f"cannot set '{key}': '{here}' is not a section", source=source)
    return node[index]


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'mapping'}"
    return "null" if value is None else f"the value {value!r}"


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def overridden_keys(overrides: Sequence[str]) -> set[str]:
    """The key paths that ``--set`` overrides name (``dataset.path``, ``dataset``)."""
    return {_dotted(item.partition("=")[0].strip()) for item in overrides}
