"""Recipe validation, hardening round three: schedules Keras would silently misread, metrics
that would clash at run time, metric settings checked against the recipe's real counts."""

import pytest
from tiny import tiny_recipe

from gankit.errors import RecipeError
from gankit.plugin.manager import load_plugins
from gankit.recipe.validation import validate


def _recipe(tmp_path, **sections):
    raw = tiny_recipe("v", {"steps": 4, "batch_size": 2}, **sections)
    raw["dataset"]["path"] = str(tmp_path)
    return raw


def _check(tmp_path, **sections):
    return validate(_recipe(tmp_path, **sections), load_plugins().registry)


def _adam(schedule):
    return {"generator": {"type": "Adam", "learning_rate": schedule},
            "discriminator": {"type": "Adam"}}


@pytest.mark.parametrize("schedule, key", [
    ({"type": "CosineDecay", "initial_learning_rate": 1e-3, "decay_steps": 100,
      "warmup_steps": 10}, "warmup_target"),
    ({"type": "CosineDecay", "initial_learning_rate": 1e-3, "decay_steps": 100,
      "warmup_target": 1e-2}, "warmup_steps"),
    ({"type": "CosineDecay", "initial_learning_rate": 1e-3}, "decay_steps"),
    ({"type": "PolynomialDecay", "initial_learning_rate": 1e-3}, "decay_steps"),
    ({"type": "ExponentialDecay", "initial_learning_rate": 1e-3, "decay_steps": 0},
     "decay_steps"),
    ({"type": "CosineDecay", "initial_learning_rate": float("nan"), "decay_steps": 9},
     "initial_learning_rate"),
])
def test_a_schedule_keras_would_misread_is_refused(tmp_path, schedule, key):
    with pytest.raises(RecipeError) as err:
        _check(tmp_path, optimizers=_adam(schedule))
    assert err.value.path.endswith(f"learning_rate.{key}"), err.value.path


def test_a_warm_up_with_its_target_and_decay_steps_validates(tmp_path):
    _check(tmp_path, optimizers=_adam({"type": "CosineDecay", "initial_learning_rate": 1e-4,
                                       "decay_steps": 100, "warmup_steps": 10,
                                       "warmup_target": 1e-3}))


def _metrics(use, **more):
    return {"use": use, "extractor": {"type": "keras_model", "path": "/nonexistent.keras"},
            **more}


@pytest.mark.parametrize("use, message", [
    (["fid", "fid"], r"metrics.use\[1\] is listed twice"),
    (["kid", {"type": "kid", "subsets": 3}], r"gives the value 'kid', as metrics.use\[0\]"),
])
def test_metrics_that_would_write_one_column_twice_are_refused(tmp_path, use, message):
    with pytest.raises(RecipeError, match=message):
        _check(tmp_path, metrics=_metrics(use))


@pytest.mark.parametrize("use, more", [
    ([{"type": "inception_score", "splits": 20}], {"samples": 2000}),
    ([{"type": "precision_recall", "k": 12}], {}),
    ([{"type": "precision_recall", "k": 50}, {"type": "inception_score", "splits": 40}],
     {"samples": 100, "reference_samples": 200}),
])
def test_valid_metric_settings_are_not_refused_by_made_up_counts(tmp_path, use, more):
    _check(tmp_path, metrics=_metrics(use, **more))


@pytest.mark.parametrize("use, more, message", [
    ([{"type": "inception_score", "splits": 30}], {"samples": 20}, "splits is 30 but"),
    ([{"type": "precision_recall", "k": 12}], {"samples": 12}, "k is 12 but metrics.samples"),
    ([{"type": "precision_recall", "k": 12}], {"reference_samples": 5},
     "k is 12 but metrics.reference_samples"),
])
def test_metric_settings_beyond_the_recipes_counts_are_refused(tmp_path, use, more, message):
    with pytest.raises(RecipeError, match=message):
        _check(tmp_path, metrics=_metrics(use, **more))
