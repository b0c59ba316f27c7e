"""Reading recipe YAML: the YAML 1.2 core schema, plain data only, errors as RecipeError.

Recipes are small, hand-written files; this loader refuses what would make them mean
something other than what they appear to say, or cost more to read than their size suggests.

- **Scalars follow the YAML 1.2 core schema**, not PyYAML's YAML 1.1 defaults. Integers are
  ``[-+]?[0-9]+`` (decimal, so ``010`` is 10), ``0o17`` (octal) and ``0x1F`` (hex); floats
  are ``8e-4``, ``1.5``, ``.5``, ``1.``, ``[-+].inf`` and ``.nan`` (and their ``Inf``/``INF``,
  ``NaN``/``NAN`` spellings); booleans are only ``true``/``True``/``TRUE`` and
  ``false``/``False``/``FALSE`` (so ``xla: off`` is the string 'off'); nulls are ``null``,
  ``Null``, ``NULL``, ``~`` and nothing. Everything else is a string: YAML 1.1's ``1:30``
  (sexagesimal), ``1_000``, ``0b101``, ``2024-01-01`` (a date) and ``=`` are read as the text
  they show, as YAML 1.2 reads them. Explicit tags get the same rules (``!!int 0b101`` is
  an error, not 5).
- **Only the core tags** ``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``, ``!!seq``
  and ``!!map`` may be written; ``!!python/...``, ``!!set``, ``!!binary``, ``!!timestamp``
  and custom ``!tags`` are refused.
- **No anchors, aliases or merge keys** (``&a``, ``*a``, ``<<:``). Refusing them is the one
  defence that needs no tuning: expanding them is what turns a 500-byte file into gigabytes
  ("billion laughs") or into a cycle, and a recipe is short enough to write out.
- **Bounded size:** a recipe file is at most 1 MiB, holds at most 10,000 values and nests at
  most 50 levels deep. The composer recurses, so depth, not size, is what exhausts the stack;
  and pure-Python PyYAML needs seconds per 100,000 values, so the count keeps a wrong or
  hostile file from stalling the command.
- **Mapping keys are text, once each:** a duplicate key, a list or mapping as a key, or a key
  YAML reads as a number, boolean or null is an error naming the line and the key path.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from gankit.errors import RecipeError

MAX_RECIPE_BYTES = 1 << 20
MAX_DEPTH = 50
MAX_VALUES = 10_000

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_SEQ, _MAP, _MERGE = _TAG + "seq", _TAG + "map", _TAG + "merge"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL}

# The YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_CORE = {
    _NULL: re.compile(r"^(?:~|null|Null|NULL|)$"),
    _BOOL: re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    _INT: re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    _FLOAT: re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
}
_WHAT = {_NULL: "null", _BOOL: "a boolean", _INT: "an integer", _FLOAT: "a number"}

_NO_ALIASES = "anchors and aliases (&, *) are not supported in recipes: write the values out"
_NO_MERGE = "merge keys (<<) are not supported in recipes: write the keys out"
_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep; a recipe needs a few"


class _Refused(yaml.YAMLError):
    """Valid YAML that recipes do not accept; ``path`` is the key path where it was found."""

    def __init__(self, message: str, mark: yaml.Mark | None, path: str) -> None:
        super().__init__(message)
        self.message, self.mark, self.path = message, mark, path


class _RecipeLoader(yaml.SafeLoader):
    """SafeLoader reading the YAML 1.2 core schema and refusing what recipes do not use
    (see the module docstring). It checks while composing, before anything is built, so a
    refusal can name the key path and nothing is ever expanded."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str | int] = []
        self._depth = self._values = 0

    def _refuse(self, message: str, mark: yaml.Mark | None) -> _Refused:
        path = ""
        for part in self._path:
            if not isinstance(part, int) and not part.isprintable():
                part = repr(part)
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
        return _Refused(message, mark, path if len(path) <= 80 else path[:77] + "...")

    def compose_node(self, parent: Any, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent) or event.anchor is not None:
            raise self._refuse(_NO_ALIASES, event.start_mark)
        self._values += 1
        if self._values > MAX_VALUES:
            raise self._refuse(f"more than {MAX_VALUES} values; a recipe needs a few dozen "
                               "(is this the right file?)", event.start_mark)
        if event.tag not in (None, "!"):
            allowed = (_SCALAR_TAGS if isinstance(event, ScalarEvent)
                       else {_SEQ} if isinstance(event, SequenceStartEvent) else {_MAP})
            if event.tag not in allowed:
                raise self._refuse(f"the tag {_short(event.tag)} is not supported in recipes "
                                   f"(only {', '.join(_short(t) for t in sorted(allowed))} "
                                   "here): remove it", event.start_mark)
        node = super().compose_node(parent, index)
        if isinstance(node, ScalarNode) and node.tag in _CORE:
            _check_scalar(self, node)
        return node

    def compose_sequence_node(self, anchor: Any) -> SequenceNode:
        start = self.get_event()
        self._enter(start)
        node = SequenceNode(_SEQ, [], start.start_mark, None, flow_style=start.flow_style)
        while not self.check_event(SequenceEndEvent):
            self._path.append(len(node.value))
            node.value.append(self.compose_node(node, len(node.value)))
            self._path.pop()
        node.end_mark = self.get_event().end_mark
        self._depth -= 1
        return node

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        start = self.get_event()
        self._enter(start)
        node = MappingNode(_MAP, [], start.start_mark, None, flow_style=start.flow_style)
        first_line: dict[str, int] = {}
        while not self.check_event(MappingEndEvent):
            event = self.peek_event()
            if isinstance(event, (SequenceStartEvent, MappingStartEvent)):
                raise self._refuse("a key must be a plain name, not a list or mapping: "
                                   "replace it with a name", event.start_mark)
            key_node = self.compose_node(node, None)
            key = _key_text(self, key_node)
            self._path.append(key)
            if key in first_line:
                raise self._refuse(f"duplicate key {_show(key)} (first at line {first_line[key]}): "
                                   "keep one of them", key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
            node.value.append((key_node, self.compose_node(node, key_node)))
            self._path.pop()
        node.end_mark = self.get_event().end_mark
        self._depth -= 1
        return node

    def _enter(self, start: yaml.Event) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._refuse(_TOO_DEEP, start.start_mark)

    def fetch_flow_collection_start(self, token_class: type) -> None:
        # The scanner reads ahead over '[[[[...' (each may start a key) at a cost that grows
        # with the square of the depth, before the composer sees the first one: stop it here.
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(_TOO_DEEP, self.get_mark(), "")
        super().fetch_flow_collection_start(token_class)


def _short(tag: str) -> str:
    if tag.startswith(_TAG):
        return "!!" + tag[len(_TAG):]
    return tag if tag.startswith("!") else f"!<{tag}>"


def _key_text(loader: _RecipeLoader, node: yaml.Node) -> str:
    if node.tag == _MERGE:
        raise loader._refuse(_NO_MERGE, node.start_mark)
    if node.tag != _STR:
        shown = _show(node.value) if node.value else "an empty key"
        raise loader._refuse(f"{shown} is read as {_WHAT[node.tag]}, but keys are names: "
                             "write a name, or quote it if it is one",
                             node.start_mark)
    return node.value


def _check_scalar(loader: _RecipeLoader, node: ScalarNode) -> None:
    """An explicitly tagged scalar must be spelled as the core schema spells that type."""
    if not _CORE[node.tag].match(node.value):
        raise loader._refuse(f"{_show(node.value)} is not {_WHAT[node.tag]} in YAML 1.2 "
                             f"(tagged {_short(node.tag)}): fix the value or remove the tag",
                             node.start_mark)
    if node.tag == _INT:
        try:
            _to_int(node.value)
        except ValueError:  # Python refuses to parse integers of more than 4300 digits
            raise loader._refuse(f"the integer {_show(node.value)} ({len(node.value)} "
                                 "characters) is too large", node.start_mark) from None


def _show(text: str, limit: int = 40) -> str:
    """``text`` quoted on one line (escapes shown), cut at ``limit`` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _to_int(text: str) -> int:
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)


def _to_float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(text)


_RecipeLoader.yaml_implicit_resolvers = {}
for _tag, _first in ((_NULL, ["~", "n", "N", ""]), (_BOOL, list("tTfF")),
                     (_INT, list("-+0123456789")), (_FLOAT, list("-+0123456789."))):
    _RecipeLoader.add_implicit_resolver(_tag, _CORE[_tag], _first)
# `<<` resolves to the merge tag only so that it can be refused by name.
_RecipeLoader.add_implicit_resolver(_MERGE, re.compile(r"^<<$"), ["<"])
_RecipeLoader.add_constructor(_INT, lambda loader, node: _to_int(node.value))
_RecipeLoader.add_constructor(_FLOAT, lambda loader, node: _to_float(node.value))


class _RecipeDumper(yaml.SafeDumper):
    """SafeDumper whose output :func:`parse_yaml` reads back as the same data: a string is
    quoted when YAML 1.2 would read it as something else (PyYAML's 1.1 rules leave ``08``,
    ``1e3`` or ``0o17`` plain) or YAML 1.1 would (``off``, ``1:30``, so other tools agree),
    and shared values are written out, never as aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_RecipeDumper.yaml_implicit_resolvers = _RecipeLoader.yaml_implicit_resolvers
_YAML11 = yaml.resolver.Resolver()


def _represent_str(dumper: _RecipeDumper, value: str) -> yaml.ScalarNode:
    node = dumper.represent_scalar(_STR, value)
    if _YAML11.resolve(ScalarNode, value, (True, False)) != _STR:
        node.style = "'"
    return node


_RecipeDumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    """``data`` (plain dicts, lists, strings, numbers, booleans, None) as YAML text that
    :func:`parse_yaml` reads back unchanged; keys keep their order."""
    return yaml.dump(data, Dumper=_RecipeDumper, sort_keys=False)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text the way recipes are read (see the module docstring).

    Raises:
        RecipeError: for any text that is not valid YAML or is refused here, as one line
            naming ``source``, the line (and the key path, where there is one).
    """
    try:
        return yaml.load(text, Loader=_RecipeLoader)
    except _Refused as exc:
        line = f" (line {exc.mark.line + 1})" if exc.mark else ""
        raise RecipeError(exc.message + line, path=exc.path or None, source=source) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise RecipeError(f"not valid YAML (line {line}): the character #x{code:04x} "
                          f"is not allowed in YAML ({exc.reason}); save the recipe as plain "
                          "UTF-8 text", source=source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = ", ".join(p for p in (exc.context, exc.problem) if p)
        if "'\\t'" in problem:
            problem += " (indent with spaces, not tabs)"
        raise RecipeError(_one_line(f"not valid YAML{where}: {problem}"), source=source) from None
    except yaml.YAMLError as exc:
        raise RecipeError(_one_line(f"not valid YAML: {exc}"), source=source) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


_FILE_KINDS = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def load_raw(path: str | Path) -> dict[str, Any]:
    """Read a recipe file into a plain mapping (not yet validated).

    Raises:
        RecipeError: if the file is missing, not a regular file, larger than 1 MiB, not
            UTF-8, not valid YAML (see :func:`parse_yaml`) or not a mapping.
    """
    path = Path(path)
    source = str(path)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise RecipeError("is a directory, expected a recipe .yaml file", source=source)
        _check_regular(info, source)
        # O_NONBLOCK: were the file swapped for a named pipe after the stat, opening it must
        # not wait for a writer; fstat then checks what was actually opened.
        with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as file:
            _check_regular(os.fstat(file.fileno()), source)
            data = file.read(MAX_RECIPE_BYTES + 1)
    except FileNotFoundError:
        raise RecipeError("recipe file not found", source=source) from None
    except OSError as exc:
        raise RecipeError(f"cannot read the recipe: {exc.strerror or exc}", source=source) from None
    except ValueError as exc:  # e.g. an embedded NUL character in the path
        raise RecipeError(f"not a usable file name: {exc}", source=source) from None
    if len(data) > MAX_RECIPE_BYTES:
        raise RecipeError(f"is larger than {MAX_RECIPE_BYTES // (1 << 20)} MiB, too large for a "
                          "recipe; is this the right file?", source=source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RecipeError(f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save "
                          "the recipe as UTF-8", source=source) from None
    data = parse_yaml(text, source)
    if data is None:
        raise RecipeError("the recipe is empty", source=source)
    if not isinstance(data, dict):
        kind = {list: "a list", str: "a single string"}.get(type(data), type(data).__name__)
        raise RecipeError(f"a recipe must be a mapping of sections (generator:, dataset:, "
                          f"train:, ...), this file is {kind}", source=source)
    return data


def _check_regular(info: os.stat_result, source: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "a special file")
        raise RecipeError(f"is {kind}, not a regular file; expected a recipe .yaml file",
                          source=source)
    if info.st_size > MAX_RECIPE_BYTES:
        raise RecipeError(f"is {info.st_size} bytes, larger than "
                          f"{MAX_RECIPE_BYTES // (1 << 20)} MiB, too large for a recipe; is this "
                          "the right file?", source=source)
