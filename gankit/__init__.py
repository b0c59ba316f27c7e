"""gankit: a plugin-based toolkit of GAN components for Keras 3 / TensorFlow.

This module is the public face: everything a plugin author or an API user needs is exported
here (``__all__``); the built-in plugins and the docs import only from it (and from
``gankit.interfaces``, ``gankit.errors``, ``gankit.params``, ``gankit.testing``).
docs/architecture.md says where each name lives. Importing gankit does not import TensorFlow.
"""

from gankit import _compat
from gankit._version import __version__
from gankit.errors import (
    DatasetError,
    GankitError,
    PluginError,
    RecipeError,
    TrainingError,
    did_you_mean,
)
from gankit.interfaces import (
    SCORE_KINDS,
    Augmenter,
    Batch,
    Callback,
    Component,
    Dataset,
    DataSource,
    Discriminator,
    Examples,
    FeatureExtractor,
    Features,
    GANModels,
    Generator,
    Loss,
    Metric,
    ModelUpdate,
    Optimizer,
    Regularizer,
    RegularizerInputs,
    RunContext,
    Schedule,
    StepOutputs,
    Strategy,
)
from gankit.interfaces.context import StepContext, step_context
from gankit.interfaces.data import ArraySource, as_examples, dataset_error, fail_unless, scale_uint8
from gankit.interfaces.metric_names import PER_CLASS, split_per_class
from gankit.interfaces.metrics import logit_classes
from gankit.params import REQUIRED, Param
from gankit.plugin.keras_objects import load_keras_model
from gankit.plugin.manager import create, default_plugins
from gankit.plugin.spec import hookimpl

_compat.install()  # 0.4 import paths keep working for one version, with a DeprecationWarning

__all__ = [
    # components: the interfaces a plugin implements
    "Augmenter", "Callback", "Component", "DataSource", "Dataset", "Discriminator",
    "FeatureExtractor", "Generator", "Loss", "Metric", "Optimizer", "Regularizer", "Schedule",
    "Strategy",
    # what they exchange
    "Batch", "Examples", "Features", "GANModels", "ModelUpdate", "RegularizerInputs",
    "RunContext", "SCORE_KINDS", "StepContext", "StepOutputs", "step_context",
    # parameters, registration, nested components
    "Param", "REQUIRED", "create", "default_plugins", "hookimpl",
    # loading a saved model with the Keras objects the plugins declare
    "load_keras_model",
    # the DataSource toolkit
    "ArraySource", "as_examples", "dataset_error", "fail_unless", "scale_uint8",
    # per-class metric values
    "PER_CLASS", "logit_classes", "split_per_class",
    # errors
    "DatasetError", "GankitError", "PluginError", "RecipeError", "TrainingError",
    "did_you_mean",
    # the application API (loaded on first use: importing gankit does not import TensorFlow)
    "TrainResult", "evaluate", "load_recipe", "resume", "sample", "train",
    "__version__",
]

_API = {"train": "gankit.app.train", "resume": "gankit.app.train",
        "TrainResult": "gankit.app.train", "sample": "gankit.app.sample",
        "evaluate": "gankit.app.evaluate", "load_recipe": "gankit.recipe.validation"}


def __getattr__(name: str):
    """The application API, imported when first used (docs/api.md)."""
    if name in _API:
        import importlib

        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gankit' has no attribute {name!r}")
