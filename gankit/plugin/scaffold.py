"""``gankit new-plugin NAME``: write a small, working plugin package to start from.

The skeleton is a complete distribution: ``pyproject.toml`` with the ``gankit`` entry point,
a package with two components (a generator and a loss) registered by the hook, tests that
run them through :mod:`gankit.testing`, and a recipe that trains them with the built-in
``gan`` strategy. Its tests pass right after ``pip install -e`` of the folder.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from string import Template

from gankit._version import __version__
from gankit.errors import GankitError

_VALID = re.compile(r"^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*$")
# Long enough for any real name; "gankit-" + NAME must stay far below the 255-byte file names
# of common file systems.
MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class PluginNames:
    """The names a plugin called ``NAME`` gets.

    Attributes:
        plugin: the entry-point name, its namespace in recipes (``my_plugin:mlp``).
        package: the Python package (``gankit_my_plugin``).
        distribution: the name pip knows it by, and its folder (``gankit-my-plugin``).
        title: the name in CamelCase, for prose (``MyPlugin``).
    """

    plugin: str
    package: str
    distribution: str
    title: str


def plugin_names(name: str) -> PluginNames:
    """Check ``name`` and derive the plugin's names from it.

    Raises:
        GankitError: if ``name`` is not lowercase letters and digits, optionally separated
            by single ``_`` or ``-``, starting with a letter, at most 64 characters; or if it
            starts with ``gankit``; or an installed plugin already uses it.
    """
    if len(name) > MAX_NAME_LENGTH:
        raise GankitError(f"invalid plugin name '{name[:20]}...' ({len(name)} characters): use at "
                          f"most {MAX_NAME_LENGTH}")
    if not _VALID.match(name):
        suggestion = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_").lstrip("0123456789_")
        hint = f" (e.g. '{suggestion}')" if suggestion and _VALID.match(suggestion) else ""
        raise GankitError(f"invalid plugin name '{name}': use lowercase letters and digits, "
                          f"optionally joined by '_' or '-', starting with a letter{hint}")
    plugin = name.replace("-", "_")
    if plugin == "gankit" or plugin.startswith("gankit_"):
        rest = plugin[len("gankit_"):]
        raise GankitError(f"invalid plugin name '{name}': leave out the 'gankit' prefix, it is "
                          f"added to the package and distribution names"
                          + (f" (use '{rest}')" if rest else ""))
    if keyword.iskeyword(plugin):
        raise GankitError(f"invalid plugin name '{name}': it is a Python keyword")
    for ep in metadata.entry_points(group="gankit"):
        if ep.name == plugin:
            owner = ep.dist.name if ep.dist else "?"
            raise GankitError(f"a plugin named '{plugin}' is already installed (distribution "
                              f"'{owner}'); choose another name")
    title = "".join(part.capitalize() for part in re.split(r"[_-]", name))
    return PluginNames(plugin, f"gankit_{plugin}", f"gankit-{plugin.replace('_', '-')}", title)


def write_plugin(name: str, directory: str | Path = ".") -> Path:
    """Write the skeleton of plugin ``name`` into ``directory/gankit-NAME`` and return it.

    Raises:
        GankitError: for an invalid name, if the folder already exists (nothing is
            overwritten), or if it cannot be written (then nothing is left behind).
    """
    names = plugin_names(name)
    folder = Path(directory) / names.distribution
    if os.path.lexists(folder):
        raise GankitError(f"{folder} already exists; choose another name or --dir "
                          "(new-plugin never overwrites files)")
    values = {"plugin": names.plugin, "package": names.package,
              "distribution": names.distribution, "title": names.title,
              "gankit_version": __version__}
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"{names.package}/__init__.py": _INIT,
        f"{names.package}/generator.py": _GENERATOR,
        f"{names.package}/losses.py": _LOSS,
        f"tests/test_{names.plugin}.py": _TEST,
        "recipes/example.yaml": _RECIPE,
    }
    try:
        folder.mkdir(parents=True)
    except FileExistsError:  # created since the check above, or --dir is a file
        raise GankitError(f"cannot create {folder}: {Path(directory)} is not a folder, or "
                          f"{folder} was just created by something else") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the path
        raise GankitError(f"cannot create {folder}: {_reason(exc)}") from None
    try:
        for relative, template in files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(template).substitute(values), encoding="utf-8")
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)  # the folder is new: a half skeleton misleads
        raise GankitError(f"cannot write the plugin into {folder}: {_reason(exc)}") from None
    return folder


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


_PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "A gankit plugin"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["gankit>=$gankit_version"]

[project.optional-dependencies]
test = ["pytest>=7"]

# gankit finds the plugin through this entry point. Its name, "$plugin", is the plugin's
# namespace: recipes can write "$plugin:mlp" to mean this plugin's component.
[project.entry-points.gankit]
$plugin = "$package"

[tool.setuptools]
packages = ["$package"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

_README = '''\
# $distribution

A gankit plugin. It provides:

- generator `mlp` (`$plugin:mlp`): a two-layer perceptron generator.
- loss `smoothed_bce` (`$plugin:smoothed_bce`): binary cross-entropy with one-sided label
  smoothing.

`recipes/example.yaml` trains them with gankit's built-in discriminator, dataset and `gan`
strategy.

```
pip install -e .              # registers the plugin: see `gankit plugins`
pytest                        # conformance checks (gankit.testing) and a short run
gankit run recipes/example.yaml --set dataset.path=/path/to/24x24/images
```

To add a component: write a class implementing one of gankit's interfaces
(`gankit.Generator`, `Discriminator`, `Dataset`, `Loss`, `Regularizer`, `Augmenter`,
`Optimizer`, `Schedule`, `Strategy`, `Callback`), register it in `$package/__init__.py`,
and test it with the matching check of `gankit.testing` (`check_generator`, `check_loss`,
...).
'''

_INIT = '''\
"""$title: a gankit plugin."""

import gankit


@gankit.hookimpl
def gankit_register_components(register):
    # Import inside the hook: gankit loads every plugin at start-up, so keep that cheap.
    from $package.generator import MLPGenerator
    from $package.losses import SmoothedBCELoss

    register(MLPGenerator)
    register(SmoothedBCELoss)
'''

_GENERATOR = '''\
"""A small fully connected generator."""

from gankit import Generator, Param


class MLPGenerator(Generator):
    """A two-layer perceptron generator.

    latent -> Dense(units) -> LeakyReLU -> Dense(height*width*channels, tanh) -> image.
    """

    name = "mlp"
    params = {
        "latent_dim": Param(int, 32, min=1, doc="length of the latent vector"),
        "height": Param(int, 24, min=1, doc="image height"),
        "width": Param(int, 24, min=1, doc="image width"),
        "channels": Param(int, 3, min=1, doc="image channels"),
        "units": Param(int, 128, min=1, doc="width of the hidden layer"),
    }

    @property
    def latent_dim(self):
        return self.config["latent_dim"]

    @property
    def image_shape(self):
        return (self.config["height"], self.config["width"], self.config["channels"])

    def build(self):
        import keras
        from keras import layers

        c = self.config
        latent = keras.Input(shape=(c["latent_dim"],), name="latent")
        x = layers.Dense(c["units"])(latent)
        x = layers.LeakyReLU(0.2)(x)
        x = layers.Dense(c["height"] * c["width"] * c["channels"], activation="tanh")(x)
        image = layers.Reshape(self.image_shape)(x)
        return keras.Model(latent, image, name="mlp_generator")
'''

_LOSS = '''\
"""Binary cross-entropy with one-sided label smoothing, as pure functions of the scores."""

from gankit import Loss, Param


def _bce(targets, scores):
    import keras
    import tensorflow as tf

    return tf.reduce_mean(keras.losses.binary_crossentropy(targets, scores))


class SmoothedBCELoss(Loss):
    """Binary cross-entropy with one-sided label smoothing (Salimans et al. 2016).

    The discriminator labels real images 1 - smoothing instead of 1, and generated ones 0;
    the generator wants its images labelled 1. Scores are probabilities: pair it with a
    discriminator that ends in a sigmoid.
    """

    name = "smoothed_bce"
    params = {
        "smoothing": Param(float, 0.1, min=0.0, max=0.5,
                           doc="how far below 1 the discriminator's target for real images is"),
    }

    @property
    def expects(self):
        return "probability"

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        # Nothing random here; a loss that needs noise draws it from ctx (ctx.uniform(...)).
        real_targets = tf.fill(tf.shape(real_scores), 1.0 - self.config["smoothing"])
        return _bce(real_targets, real_scores) + _bce(tf.zeros_like(fake_scores), fake_scores)

    def generator_loss(self, fake_scores, ctx, real_scores=None):
        import tensorflow as tf

        return _bce(tf.ones_like(fake_scores), fake_scores)
'''

_TEST = '''\
"""Tests of the $plugin plugin. The fixtures (gankit_run, gankit_image_folder) come from
gankit's pytest plugin, installed with gankit."""

from pathlib import Path

from gankit.testing import check_generator, check_loss, check_plugin
from $package.generator import MLPGenerator
from $package.losses import SmoothedBCELoss

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "example.yaml"


def test_the_plugin_is_installed_and_registers_its_components():
    check_plugin("$plugin", provides={"generator": ["mlp"], "loss": ["smoothed_bce"]})


def test_the_generator_passes_the_conformance_checks():
    check_generator(MLPGenerator(latent_dim=8, height=8, width=8, units=16))


def test_the_loss_passes_the_conformance_checks():
    check_loss(SmoothedBCELoss())
    check_loss(SmoothedBCELoss(smoothing=0.0))


def test_the_recipe_trains_for_two_steps(gankit_run, gankit_image_folder):
    images = gankit_image_folder(n=4, height=24, width=24)
    run = gankit_run(RECIPE, steps=2, overrides=[f"dataset.path={images}",
                                                 "generator.units=16",
                                                 "discriminator.filters=8"])
    assert (run.run_dir / "generator.keras").is_file()
'''

_RECIPE = '''\
# This plugin's generator and loss with gankit's built-in discriminator, dataset and
# training strategy. Train it on a folder of 24x24 images:
#   gankit run recipes/example.yaml --set dataset.path=/path/to/images
name: ${plugin}_example

generator:
  type: $plugin:mlp       # plugin:name, so no other plugin's "mlp" can be meant
  latent_dim: 32
  height: 24
  width: 24
  units: 128

discriminator:
  type: frog_dcgan        # ends in a sigmoid: it gives the probabilities the loss expects
  height: 24
  width: 24
  filters: 32

dataset:
  type: image_folder
  path: images
  height: 24
  width: 24
  scale: [-1.0, 1.0]      # the generator ends with tanh

loss:
  type: $plugin:smoothed_bce
  smoothing: 0.1

optimizers:
  generator: {type: Adam, learning_rate: 2.0e-4, beta_1: 0.5}
  discriminator: {type: Adam, learning_rate: 2.0e-4, beta_1: 0.5}

strategy: gan             # gankit's built-in: a discriminator update, then a generator update

train:
  steps: 200
  batch_size: 4
  grid_every: 50
  grid_size: 4
'''
