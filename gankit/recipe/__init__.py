"""Recipes: strict YAML in, a validated :class:`~gankit.recipe.validation.Recipe` out; TF-free.

Modules: ``strict_yaml`` (YAML 1.2 load and dump), ``overrides`` (``--set KEY=VALUE``),
``schema`` (the ``train``, ``ema`` and ``metrics`` sections), ``validation`` (``load_recipe``,
``validate``, the ``Recipe`` object).
"""


def __getattr__(name: str):  # 0.4's flat gankit.recipe module; goes in 0.6
    from gankit._compat import lookup
    return lookup(__name__, name)
