"""gankit: a plugin-based toolkit of GAN components for Keras 3 / TensorFlow.

Importing gankit does not import TensorFlow.
"""

from gankit.errors import GankitError
from gankit.hookspecs import hookimpl
from gankit.interfaces import (Component, Dataset, Discriminator, Generator, StepOutputs,
                               Strategy)
from gankit.params import REQUIRED, Param

__version__ = "0.1.0"

__all__ = ["Component", "Dataset", "Discriminator", "Generator", "GankitError", "Param",
           "REQUIRED", "StepOutputs", "Strategy", "hookimpl", "__version__"]
