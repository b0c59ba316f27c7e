"""Quality metrics of generators: features, image sources, per-class scores, the feature
cache, the metrics callback of training and the offline classifier."""


def __getattr__(name: str):  # 0.4's flat gankit.evaluation module; goes in 0.6
    from gankit._compat import lookup
    return lookup(__name__, name)
