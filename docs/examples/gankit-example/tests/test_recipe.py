"""The example recipe, validated and trained for two steps through the real `gankit run`."""

import csv
import json
from pathlib import Path

import pytest

from gankit import load_recipe
from gankit.errors import RecipeError

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "shapes_lsgan.yaml"
TINY = ["train.batch_size=4", "dataset.count=8", "generator.filters=8",
        "discriminator.filters=8", "train.grid_size=2"]


def test_the_recipe_uses_this_plugins_parts_with_the_built_in_strategy():
    recipe = load_recipe(RECIPE)
    providers = {kind: spec.registration.distribution for kind, spec in recipe.components.items()}
    assert providers == {"generator": "gankit-example", "discriminator": "gankit-example",
                         "dataset": "gankit-example", "loss": "gankit-example",
                         "augmenter": "gankit", "strategy": "gankit"}
    assert recipe.spec("strategy").type == "gan"
    [regularizer] = recipe.sections["regularizer"]
    assert (regularizer.registration.distribution, regularizer.type) == \
        ("gankit-example", "example:consistency")


def test_validation_refuses_a_batch_larger_than_the_dataset():
    with pytest.raises(RecipeError, match=r"dataset.count: expected at least "
                                          r"train.batch_size \(16\) images, got 8"):
        load_recipe(RECIPE, ["dataset.count=8"])


def test_the_recipe_trains_for_two_steps(gankit_run):
    run = gankit_run(RECIPE, steps=2, overrides=TINY)
    assert (run.run_dir / "generator.keras").is_file()
    assert "Finished step 2" in run.stdout
    status = json.loads((run.run_dir / "run.json").read_text())
    assert status["status"] == "completed"
    with open(run.run_dir / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    # The regularizer's term is logged next to the losses, under its name.
    assert all(float(row["d_consistency"]) >= 0.0 for row in rows)
