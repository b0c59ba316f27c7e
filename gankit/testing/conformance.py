"""What every conformance check shares: the failure type, the report, running named checks,
and the config round trip that every kind of component must pass.

Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from gankit.errors import did_you_mean
from gankit.interfaces import Component

# Attributes a rebuilt component must report exactly as the original did.
_DESCRIBING_ATTRIBUTES = ("latent_dim", "image_shape", "value_range", "output_activation")


class ConformanceError(AssertionError):
    """A component failed a conformance check.

    An ``AssertionError``, so pytest reports it as a test failure. The message names the
    component, the check and what was expected.

    Attributes:
        check: the name of the failed check (``"shapes"``, ``"config"``, ...).
        component: the component under test.
    """

    def __init__(self, component: Any, check: str, message: str) -> None:
        kind = getattr(component, "kind", "component")
        super().__init__(f"{type(component).__name__} ({kind}) failed the '{check}' check: "
                         f"{message}")
        self.check = check
        self.component = component


@dataclass(frozen=True)
class ConformanceReport:
    """What a passing ``check_*`` call ran.

    Attributes:
        component: the class name of the component checked.
        kind: its kind.
        passed: the checks that ran and passed, in order.
        skipped: the checks skipped on request.
        notes: remarks on what passed but deserves a word, one sentence each: a weight
            that stayed unchanged for a stated reason, a weight skipped by
            ``skip_weights``, frozen generator weights.
    """

    component: str
    kind: str
    passed: tuple[str, ...]
    skipped: tuple[str, ...]
    notes: tuple[str, ...] = ()


class CheckRun:
    """Runs named checks on one component in order, honouring ``skip``.

    Each check is a function of no arguments that calls :meth:`fail` (or raises anything:
    an unexpected exception becomes a :class:`ConformanceError` of that check).
    """

    def __init__(self, component: Any, names: Sequence[str], skip: Iterable[str] = ()) -> None:
        skip = tuple(skip)
        unknown = [s for s in skip if s not in names]
        if unknown:
            raise ValueError(f"unknown check '{unknown[0]}' in skip"
                             f"{did_you_mean(unknown[0], names)}; the checks of a "
                             f"{getattr(component, 'kind', 'component')} are: {', '.join(names)}")
        self.component = component
        self.names = tuple(names)
        self.skip = skip
        self._current = ""
        self._passed: list[str] = []
        self._notes: list[str] = []

    def fail(self, message: str) -> None:
        """Fail the check that is running with ``message``."""
        raise ConformanceError(self.component, self._current, message)

    def note(self, message: str) -> None:
        """Add a remark to the report, prefixed with the running check's name."""
        text = f"{self._current}: {message}" if self._current else message
        if text not in self._notes:
            self._notes.append(text)

    def run(self, checks: dict[str, Callable[[], None]]) -> ConformanceReport:
        """Run ``checks`` (name -> function) in the order of ``names``."""
        assert set(checks) == set(self.names), (set(checks), self.names)
        for name in self.names:
            if name in self.skip:
                continue
            self._current = name
            try:
                checks[name]()
            except ConformanceError:
                raise
            except Exception as exc:  # the component raised: report it as this check's failure
                raise ConformanceError(self.component, name,
                                       f"raised {type(exc).__name__}: {exc}") from exc
            self._passed.append(name)
        return ConformanceReport(type(self.component).__name__,
                                 getattr(self.component, "kind", ""),
                                 tuple(self._passed), self.skip, tuple(self._notes))


def require_kind(component: Any, interface: type[Component], function: str) -> None:
    """Raise TypeError (a misuse of the kit, not a failed check) if ``component`` is not an
    instance of ``interface``."""
    if isinstance(component, type):
        raise TypeError(f"{function}() takes a component instance, e.g. "
                        f"{component.__name__}(**config), not the class")
    if not isinstance(component, interface):
        raise TypeError(f"{function}() takes a gankit.{interface.__name__}, got "
                        f"{type(component).__name__}")


def positive_int(value: Any) -> bool:
    """Whether ``value`` is an int (not a bool) above zero."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def check_image_shape(shape: Any, fail: Callable[[str], None]) -> None:
    """Fail unless ``shape`` is ``(height, width, channels)`` of positive ints."""
    if not (isinstance(shape, (tuple, list)) and len(shape) == 3
            and all(positive_int(s) for s in shape)):
        fail(f"image_shape must be (height, width, channels) of positive ints, got {shape!r}")


def skipped_weight(path: str, skip_weights: Sequence[str]) -> str | None:
    """The first entry of ``skip_weights`` that is a substring of the weight ``path``."""
    return next((pattern for pattern in skip_weights if pattern and pattern in path), None)


def check_skip_weights(skip_weights: Any) -> tuple[str, ...]:
    """``skip_weights`` as a tuple of non-empty strings (a single string is one entry).

    Raises:
        TypeError: for anything else (a misuse of the kit, not a failed check).
    """
    if isinstance(skip_weights, str):
        skip_weights = (skip_weights,)
    skip_weights = tuple(skip_weights)
    bad = [s for s in skip_weights if not isinstance(s, str) or not s]
    if bad:
        raise TypeError(f"skip_weights takes non-empty strings (parts of weight paths such as "
                        f"'score/bias'), got {bad[0]!r}")
    return skip_weights


def _plain(value: Any) -> Any:
    """``value`` as it comes back from a recipe or run directory (JSON types only)."""
    return json.loads(json.dumps(value))


def check_config_round_trip(component: Component, fail: Callable[[str], None]) -> None:
    """The config checks shared by every kind (the ``config`` check of each ``check_*``).

    ``get_config()`` returns a fresh dict of every declared parameter, in plain data a
    recipe can hold; ``from_config`` of it (also after a JSON round trip, as a run directory
    stores it) rebuilds an equal component.
    """
    cls = type(component)
    config = component.get_config()
    if not isinstance(config, dict):
        fail(f"get_config() returned {type(config).__name__}, expected a dict")
    undeclared = sorted(set(config) - set(cls.params))
    if undeclared:
        fail(f"get_config() has key(s) {', '.join(map(repr, undeclared))} not declared in "
             f"{cls.__name__}.params, so a recipe cannot set them and from_config rejects them")
    missing = sorted(set(cls.params) - set(config))
    if missing:
        fail(f"get_config() lacks declared parameter(s) {', '.join(map(repr, missing))}; it "
             "must return every parameter so the component can be rebuilt exactly")
    try:
        plain = _plain(config)
    except (TypeError, ValueError) as exc:
        fail(f"get_config() must return plain data (numbers, strings, booleans, lists, null) "
             f"that a recipe can hold: {exc}")
    expected = copy.deepcopy(config)
    config.clear()  # the caller owns what get_config returns
    if component.get_config() != expected:
        fail("get_config() returned the component's own dict: changing it changed the "
             "component; return a copy")
    for label, given in (("get_config()", expected), ("get_config() after JSON", plain)):
        try:
            rebuilt = cls.from_config(copy.deepcopy(given))
        except Exception as exc:
            fail(f"from_config({label}) raised {type(exc).__name__}: {exc}")
        if type(rebuilt) is not cls:
            fail(f"from_config({label}) returned {type(rebuilt).__name__}, expected {cls.__name__}")
        again = rebuilt.get_config()
        if _plain(again) != plain:
            changed = sorted(k for k in set(again) | set(plain)
                             if _plain(again.get(k)) != plain.get(k))
            key = changed[0] if changed else "?"
            fail(f"from_config({label}).get_config() differs at '{key}': "
                 f"{plain.get(key)!r} became {again.get(key)!r}")
        for attr in _DESCRIBING_ATTRIBUTES:
            if hasattr(component, attr) and getattr(rebuilt, attr) != getattr(component, attr):
                fail(f"from_config({label}) gives {attr} {getattr(rebuilt, attr)!r}, the "
                     f"original has {getattr(component, attr)!r}")


def _probe_loss(output, seed: int):
    """A scalar that depends on every output value, through fixed random weights."""
    import tensorflow as tf

    probe = tf.random.stateless_normal(tf.shape(output), [seed, 7], dtype=output.dtype)
    return tf.reduce_mean(output * probe)
