"""What each kind of component must provide.

A component is a class registered under a kind and a name. Its constructor takes the
parameters it declares in ``params`` (checked and completed with defaults), so any component
can be built and unit-tested alone::

    gen = FrogDCGANGenerator(latent_dim=16)
    model = gen.build()

This package imports neither TensorFlow nor Keras: recipe validation and ``gankit plugins``
stay fast. Components import Keras inside the methods that build models.
"""

from gankit.interfaces.callbacks import Callback, RunContext, RunFiles, SessionView
from gankit.interfaces.component import Component, RecipeView
from gankit.interfaces.data import Dataset, DataSource, Examples
from gankit.interfaces.metrics import FeatureExtractor, Features, Metric
from gankit.interfaces.models import Discriminator, Generator
from gankit.interfaces.training import (
                                        SCORE_KINDS,
                                        Augmenter,
                                        Batch,
                                        GANModels,
                                        Loss,
                                        ModelUpdate,
                                        Optimizer,
                                        Regularizer,
                                        RegularizerInputs,
                                        Schedule,
                                        StepOutputs,
                                        Strategy,
)

__all__ = ["Augmenter", "Batch", "Callback", "Component", "DataSource", "Dataset",
           "Discriminator", "Examples", "FeatureExtractor", "Features", "GANModels",
           "Generator", "Loss", "Metric", "ModelUpdate", "Optimizer", "RecipeView", "RunContext",
           "RunFiles", "SessionView",
           "Regularizer", "RegularizerInputs", "SCORE_KINDS", "Schedule", "StepOutputs",
           "Strategy"]
