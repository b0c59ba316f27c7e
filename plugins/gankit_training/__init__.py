"""Built-in plugin: the parts of training (losses, regularizers, augmenters, optimizers,
learning-rate schedules), the ``gan`` strategy that combines them, and the ``snapshot``
callback."""

import gankit


@gankit.hookimpl
def gankit_register_components(register):
    from gankit_training.augment import CoarseToFine, DiffAugment, NoAugment
    from gankit_training.losses import (
        BCELoss,
        HingeLoss,
        LeastSquaresLoss,
        NonSaturatingLoss,
        WassersteinLoss,
    )
    from gankit_training.optimizers import OPTIMIZERS, SCHEDULES
    from gankit_training.regularizers import GradientPenalty, R1Penalty, R2Penalty
    from gankit_training.snapshots import Snapshot
    from gankit_training.strategy import GANStrategy

    for component in (BCELoss, NonSaturatingLoss, HingeLoss, WassersteinLoss, LeastSquaresLoss,
                      GradientPenalty, R1Penalty, R2Penalty, NoAugment, DiffAugment,
                      CoarseToFine, *OPTIMIZERS, *SCHEDULES, GANStrategy, Snapshot):
        register(component)
