"""Built-in plugin: quality metrics (FID, KID, Inception Score, precision/recall) and the
feature extractors they compare images through (InceptionV3, any ``.keras`` model)."""

import gankit


@gankit.hookimpl
def gankit_register_components(register):
    from gankit_metrics.extractors import EXTRACTORS
    from gankit_metrics.metrics import METRICS

    for component in (*EXTRACTORS, *METRICS):
        register(component)
