"""The recipe YAML loader: YAML 1.2 core scalars, and one-line RecipeErrors (never a
traceback, a hang or a memory blow-up) for anything else a file can contain."""

import math
import os
import random
import threading
import time
from pathlib import Path

import pytest
import yaml

from gankit.cli.main import main
from gankit.errors import RecipeError
from gankit.recipe.strict_yaml import MAX_RECIPE_BYTES, dump_yaml, load_raw, parse_yaml

ROOT = Path(__file__).resolve().parents[2]
FROG = ROOT / "recipes" / "frog_dcgan.yaml"

# Some 400 bytes that expand to 9**9 (~387 million) strings once the aliases are copied.
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi"))


def _refused(text, seconds=5.0):
    """The RecipeError message for ``text``, checked to be one line and quick (well under a
    second on an idle machine; the bound leaves room for a loaded CI machine, while an
    expansion would take minutes and gigabytes)."""
    start = time.monotonic()
    with pytest.raises(RecipeError) as err:
        parse_yaml(text, "r.yaml")
    assert time.monotonic() - start < seconds
    message = str(err.value)
    assert message.startswith("r.yaml: ") and "\n" not in message, message
    return message


@pytest.mark.parametrize("text, value", [
    ("010", 10), ("+12", 12), ("-7", -7), ("0o10", 8), ("0x1F", 31), ("0", 0),
    ("8e-4", 8e-4), ("1e3", 1000.0), ("1.", 1.0), (".5", 0.5), ("-2.5E+2", -250.0),
    (".inf", math.inf), ("+.Inf", math.inf), ("-.INF", -math.inf),
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("FALSE", False),
    ("null", None), ("~", None), ("", None), ("NULL", None),
    # YAML 1.1 readings that YAML 1.2 does not have: these are strings.
    ("1:30", "1:30"), ("1_000", "1_000"), ("0b101", "0b101"), ("-0x1F", "-0x1F"),
    ("off", "off"), ("yes", "yes"), ("No", "No"), ("on", "on"), ("2024-01-01", "2024-01-01"),
    ("=", "="), ("-.nan", "-.nan"), ("0o", "0o"), ("tRUE", "tRUE"),
    # explicit core tags follow the same rules
    ("!!int 010", 10), ("!!float 1", 1.0), ("!!str 0x1F", "0x1F"), ("'010'", "010"),
])
def test_scalars_follow_the_yaml_12_core_schema(text, value):
    result = parse_yaml(f"a: {text}", "r.yaml")["a"]
    assert result == value and type(result) is type(value), (text, result)


def test_nan_is_a_float():
    assert all(math.isnan(parse_yaml(f"a: {t}", "r")["a"]) for t in (".nan", ".NaN", ".NAN"))


@pytest.mark.parametrize("text, message", [
    ("a: !!int 0b101", "a: '0b101' is not an integer in YAML 1.2 (tagged !!int)"),
    ("a: !!float 1:30", "a: '1:30' is not a number in YAML 1.2 (tagged !!float)"),
    ("a: !!bool yes", "a: 'yes' is not a boolean in YAML 1.2"),
    ("a: !!python/object:os.system x", "a: the tag !!python/object:os.system is not supported"),
    ("a: !!python/object/apply:os.system [ls]", "a: the tag !!python/object/apply:os.system"),
    ("a: [1, {b: !!set {x}}]", "a[1].b: the tag !!set is not supported in recipes"),
    ("a: !!binary aGk=", "the tag !!binary is not supported"),
    ("a: !!timestamp 2024-01-01", "the tag !!timestamp is not supported"),
    ("a: !custom x", "the tag !custom is not supported"),
    ("a: !!map [1]", "the tag !!map is not supported in recipes (only !!seq here)"),
    ("a: " + "9" * 5000, "a: the integer '99999"),
])
def test_tags_outside_the_core_schema_and_ill_spelled_values_are_refused(text, message):
    assert message in _refused(text)


@pytest.mark.parametrize("text", [
    BILLION_LAUGHS,
    "a: &a [*a]",
    "a: &a {b: *a}",
    "x: &x 1\ny: *x",
    "a: *undefined",
])
def test_anchors_and_aliases_are_refused_before_anything_is_expanded(text):
    assert "anchors and aliases (&, *) are not supported in recipes: write the values out" \
        in _refused(text)


def test_the_bomb_is_small_and_refused_at_its_first_line():
    assert len(BILLION_LAUGHS.encode()) < 500
    assert _refused(BILLION_LAUGHS).endswith("(line 1)")


@pytest.mark.parametrize("text", ["[" * 5000, "[" * 5000 + "]" * 5000, "- " * 5000,
                                  "".join(" " * i + f"k{i}:\n" for i in range(60)) + " " * 60 + "1",
                                  "{a: " * 5000 + "1" + "}" * 5000])
def test_deep_nesting_is_refused(text):
    assert "nested more than 50 levels deep" in _refused(text)


def test_fifty_levels_are_fine():
    assert parse_yaml("[" * 50 + "]" * 50, "r") is not None


def test_too_many_values_are_refused_quickly():
    # pure-Python PyYAML reads some 25,000 values a second: the limit bounds the time
    assert "more than 10000 values" in _refused("[" + "1, " * 200_000 + "1]", seconds=5.0)


@pytest.mark.parametrize("text, message", [
    ("? [a, b]\n: 1", "a key must be a plain name, not a list or mapping: replace it with a "
                     "name (line 1)"),
    ("train:\n  ? {a: 1}\n  : 2", "train: a key must be a plain name, not a list or mapping"),
    ("{[a]: 1}", "a key must be a plain name"),
    ("train:\n  1: x", "train: '1' is read as an integer, but keys are names: write a name, or "
                       "quote it if it is one (line 2)"),
    ("true: x", "'true' is read as a boolean"),
    ("null: x", "'null' is read as null"),
    ("? \n: x", "an empty key is read as null"),
    ("base: {a: 1}\nother:\n  <<: {a: 1}", "other: merge keys (<<) are not supported in "
                                           "recipes: write the keys out (line 3)"),
    ("train:\n  steps: 1\n  steps: 2", "train.steps: duplicate key 'steps' (first at line 2): "
                                       "keep one of them (line 3)"),
])
def test_keys_are_names_given_once(text, message):
    assert message in _refused(text)


def test_quoted_keys_that_look_like_numbers_are_names():
    assert parse_yaml("'1': a\n\"true\": b\n!!str 2: c", "r") == {"1": "a", "true": "b", "2": "c"}


@pytest.mark.parametrize("text, message", [
    ("a: [1, 2", r"not valid YAML (line 1, column 9): while parsing a flow sequence"),
    ("a:\n\tb: 1", "(indent with spaces, not tabs)"),
    ("a: 1\n---\nb: 2", "expected a single document in the stream, but found another document"),
    ("a: b\x00", "not valid YAML (line 1): the character #x0000 is not allowed in YAML"),
    ("a: 1\nb: \x07", "not valid YAML (line 2)"),
    ("a: \ud800", "the character #xd800"),
    ("a: 'x\n\n  y", "not valid YAML"),
    ("%YAML 2.0\n---\na: 1", "incompatible YAML document"),
])
def test_syntax_errors_name_the_line(text, message):
    assert message in _refused(text)


def test_values_with_line_breaks_stay_on_one_line_in_messages():
    assert "'x\\ny' is not an integer" in _refused('a: !!int "x\\ny"')


def test_any_text_gives_data_or_a_recipe_error():
    """Mutations of the frog recipe and random text: never another exception."""
    base = FROG.read_text()
    pieces = ["&a ", "*a", "!!int ", "!!python/object ", "<<: ", "? ", "- ", "[", "]", "{", "}",
              ",", ":", "\t", "'", '"', "\\", "%YAML 1.1\n", "---\n", "...\n", "#", "|", ">",
              "!", "\x00", "\ufeff", "\x85", "\u2028", "\r", "\n  ", "0x", ".inf", "1:3", "~",
              "\ud800", "%TAG ! tag:x,2000:\n", "!<x> ", "!!map ", "!!seq ", "!!float ", "é"]
    rng = random.Random(0)
    for i in range(400):
        if i % 3 == 0:
            chars = list(base)
            for _ in range(rng.randint(1, 6)):
                chars.insert(rng.randrange(len(chars) + 1), rng.choice(pieces))
            text = "".join(chars)
        elif i % 3 == 1:
            text = "".join(rng.choice(pieces + list("ab01:-[]{} \n")) for _ in range(40))
        else:
            text = bytes(rng.randrange(256) for _ in range(120)).decode("utf-8", "surrogateescape")
        try:
            parse_yaml(text, "r.yaml")
        except RecipeError as err:
            assert "\n" not in str(err), (text, str(err))


def test_dump_yaml_round_trips_what_plain_pyyaml_would_not():
    """A run directory stores its recipe; resuming reads it back with parse_yaml."""
    shared = [0.0, 1.0]
    data = {"name": "08", "a": "1e3", "b": "0o17", "c": "8e-4", "d": "+.5", "e": "1:30",
            "f": "off", "g": "TRUE", "h": "<<", "i": "", "j": "2024-01-01", "k": "a\nb",
            "small": 1e-5, "inf": math.inf, "int": 10, "big": 10**30, "flag": True, "none": None,
            "scale": shared, "also": shared, "nested": {"x": [1, "2", {"y": "0x1F"}]}}
    text = dump_yaml(data)
    assert "&" not in text and "*" not in text  # shared values are written out
    assert parse_yaml(text, "r") == data
    assert yaml.safe_load(text) == data  # YAML 1.1 tools read the same
    assert list(parse_yaml(text, "r")) == list(data)  # in order


# --- files ---------------------------------------------------------------------------------

def _load_with_timeout(path, seconds=10):
    """load_raw(path) in a thread: a FIFO must not block it."""
    result = {}

    def target():
        try:
            result["value"] = load_raw(path)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():  # release the blocked open, then fail
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(seconds)
        pytest.fail(f"load_raw({path}) blocked")
    return result


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "x.yaml"
    os.mkfifo(fifo)
    error = _load_with_timeout(fifo).get("error")
    assert isinstance(error, RecipeError)
    assert str(error) == (f"{fifo}: is a named pipe, not a regular file; expected a recipe "
                          ".yaml file")


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_is_refused():
    with pytest.raises(RecipeError, match="^/dev/null: is a character device, not a regular"):
        load_raw("/dev/null")


def test_a_file_over_one_mebibyte_is_refused_unread(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("a: 1\n" + "#" * MAX_RECIPE_BYTES)
    with pytest.raises(RecipeError) as err:
        load_raw(big)
    assert str(err.value).startswith(f"{big}: is {MAX_RECIPE_BYTES + 5} bytes, larger than 1 MiB")


@pytest.mark.parametrize("kind, message", [
    ("missing", "recipe file not found"),
    ("directory", "is a directory, expected a recipe .yaml file"),
    ("loop", "cannot read the recipe: Too many levels of symbolic links"),
    ("dangling", "recipe file not found"),
    ("latin1", "is not UTF-8 text (byte 0xe9 on line 2); save the recipe as UTF-8"),
    ("empty", "the recipe is empty"),
    ("list", "a recipe must be a mapping of sections (generator:, dataset:, train:, ...), this "
             "file is a list"),
])
def test_unusable_files_are_one_line(tmp_path, kind, message):
    path = tmp_path / "r.yaml"
    if kind == "directory":
        path.mkdir()
    elif kind == "loop":
        path.symlink_to(tmp_path / "r2.yaml")
        (tmp_path / "r2.yaml").symlink_to(path)
    elif kind == "dangling":
        path.symlink_to(tmp_path / "nowhere.yaml")
    elif kind == "latin1":
        path.write_bytes("name: x\ndescription: caf\xe9\n".encode("latin-1"))
    elif kind in ("empty", "list"):
        path.write_text("# nothing\n" if kind == "empty" else "- a\n")
    with pytest.raises(RecipeError) as err:
        load_raw(path)
    assert str(err.value) == f"{path}: {message}", str(err.value)


def test_a_utf8_bom_is_fine(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_bytes(b"\xef\xbb\xbfname: x\n")
    assert load_raw(path) == {"name": "x"}


@pytest.mark.parametrize("text, message", [
    (BILLION_LAUGHS, "anchors and aliases (&, *) are not supported in recipes"),
    ("[" * 5000, "nested more than 50 levels deep"),
    ("generator: {type: frog_dcgan}\n<<: {a: 1}\n", "merge keys (<<) are not supported"),
    ("? [a, b]\n: 1\n", "a key must be a plain name"),
])
def test_the_cli_prints_one_line_and_exits_2(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gankit: error: {path}: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
