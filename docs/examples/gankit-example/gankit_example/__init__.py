"""gankit-example: two models, a dataset, a loss and a regularizer, registered through the
``gankit`` entry point."""

import gankit


@gankit.hookimpl
def gankit_register_components(register):
    # Imported here, not at the top: gankit loads every plugin at start-up, and
    # `gankit plugins` or `gankit validate` should not pay for what they do not use.
    from gankit_example.critic import ConvCritic
    from gankit_example.generator import UpsamplingGenerator
    from gankit_example.losses import NoisyLeastSquaresLoss
    from gankit_example.regularizers import ConsistencyRegularizer
    from gankit_example.shapes import ShapesDataset

    register(UpsamplingGenerator)
    register(ConvCritic)
    register(ShapesDataset)
    register(NoisyLeastSquaresLoss)
    register(ConsistencyRegularizer)
