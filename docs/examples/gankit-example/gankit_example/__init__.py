"""gankit-example: models, a dataset, losses, a regularizer, a callback, a metric and a
feature extractor, registered through the ``gankit`` entry point, and the plugin's own
Keras layers, declared for loading saved models."""

import gankit


@gankit.hookimpl
def gankit_register_components(register):
    # Imported here, not at the top: gankit loads every plugin at start-up, and
    # `gankit plugins` or `gankit validate` should not pay for what they do not use.
    from gankit_example.callbacks import FooledShare
    from gankit_example.critic import ConvCritic
    from gankit_example.extractors import ThumbnailExtractor
    from gankit_example.generator import UpsamplingGenerator
    from gankit_example.losses import NoisyLeastSquaresLoss
    from gankit_example.metrics import DensityCoverage
    from gankit_example.regularizers import ConsistencyRegularizer
    from gankit_example.relativistic import RelativisticAverageLoss
    from gankit_example.shapes import ShapesDataset
    from gankit_example.styled import StyledGenerator

    register(UpsamplingGenerator)
    register(StyledGenerator)
    register(ConvCritic)
    register(ShapesDataset)
    register(NoisyLeastSquaresLoss)
    register(RelativisticAverageLoss)
    register(ConsistencyRegularizer)
    register(FooledShare)
    register(DensityCoverage)
    register(ThumbnailExtractor)


@gankit.hookimpl
def gankit_keras_objects():
    # Called only when gankit loads a saved model; this is where Keras may be imported.
    from gankit_example.layers import AdaIN, LearnedConstant

    return [AdaIN, LearnedConstant]
