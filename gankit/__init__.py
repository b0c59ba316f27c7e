"""gankit: a plugin-based toolkit of GAN components for Keras 3 / TensorFlow.

Importing gankit does not import TensorFlow.
"""

from gankit.errors import GankitError
from gankit.hookspecs import hookimpl
from gankit.interfaces import (Augmenter, Batch, Callback, Component, DataSource, Dataset,
                               Discriminator, Examples, GANModels, Generator, Loss, Optimizer,
                               Regularizer, RegularizerInputs, Schedule, StepOutputs, Strategy)
from gankit.params import REQUIRED, Param

__version__ = "0.4.0"

__all__ = ["Augmenter", "Batch", "Callback", "Component", "DataSource", "Dataset",
           "Discriminator", "Examples", "GANModels", "GankitError", "Generator", "Loss",
           "Optimizer", "Param", "REQUIRED", "Regularizer", "RegularizerInputs", "Schedule",
           "StepOutputs", "Strategy", "hookimpl", "__version__"]
