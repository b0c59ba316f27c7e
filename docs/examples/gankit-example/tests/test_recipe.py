"""The example recipe, trained for two steps through the real `gankit run`."""

import json
from pathlib import Path

from gankit.recipe import load_recipe

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "shapes_lsgan.yaml"
TINY = ["train.batch_size=4", "dataset.count=8", "generator.filters=8",
        "discriminator.filters=8", "train.grid_size=2"]


def test_the_recipe_uses_this_plugins_components():
    recipe = load_recipe(RECIPE)
    providers = {kind: spec.registration.distribution for kind, spec in recipe.components.items()}
    assert providers == {"generator": "gankit-example", "discriminator": "gankit-example",
                         "dataset": "gankit-example", "strategy": "gankit-example"}


def test_the_recipe_trains_for_two_steps(gankit_run):
    run = gankit_run(RECIPE, steps=2, overrides=TINY)
    assert (run.run_dir / "generator.keras").is_file()
    assert "Finished step 2" in run.stdout
    status = json.loads((run.run_dir / "run.json").read_text())
    assert status["status"] == "completed"
