"""gankit: a plugin-based toolkit of GAN components for Keras 3 / TensorFlow.

Importing gankit does not import TensorFlow.
"""

from gankit import _compat
from gankit._version import __version__
from gankit.errors import GankitError
from gankit.plugin.spec import hookimpl
from gankit.interfaces import (Augmenter, Batch, Callback, Component, DataSource, Dataset,
                               Discriminator, Examples, GANModels, Generator, Loss, Optimizer,
                               Regularizer, RegularizerInputs, Schedule, StepOutputs, Strategy)
from gankit.params import REQUIRED, Param

_compat.install()  # 0.4 import paths keep working for one version, with a DeprecationWarning

__all__ = ["Augmenter", "Batch", "Callback", "Component", "DataSource", "Dataset",
           "Discriminator", "Examples", "GANModels", "GankitError", "Generator", "Loss",
           "Optimizer", "Param", "REQUIRED", "Regularizer", "RegularizerInputs", "Schedule",
           "StepOutputs", "Strategy", "hookimpl", "__version__"]
