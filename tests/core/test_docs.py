"""The docs describe the code: the recipe reference is regenerated and compared."""

import re
from pathlib import Path

import pytest

from gankit.app.reference import builtin_registry, embedded, render_reference

ROOT = Path(__file__).resolve().parents[2]


def test_recipe_reference_matches_the_code():
    doc = (ROOT / "docs" / "recipes.md").read_text()
    assert embedded(doc) == render_reference(builtin_registry()), (
        "docs/recipes.md is stale: run `python -m gankit.app.reference docs/recipes.md`")


def test_readme_quick_start_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ('python -m pip install -e ".[test]"', "python -m pytest"):
        assert command in readme and command in ci
    assert "gankit run recipes/frog_dcgan.yaml" in readme


# Recipes that need a file the user makes first (a projected discriminator's backbone, made
# with gankit train-classifier): the key that names it.
PREREQUISITES = {"frog_fast_pretrained": "discriminator.members[1].backbone"}


def test_every_shipped_recipe_validates(tmp_path):
    from gankit.errors import RecipeError
    from gankit.evaluation.classifier import build_classifier
    from gankit.recipe.validation import load_recipe

    recipes = sorted((ROOT / "recipes").glob("*.yaml"))
    assert len(recipes) >= 3
    assert set(PREREQUISITES) <= {path.stem for path in recipes}
    backbone = tmp_path / "backbone.keras"
    build_classifier((32, 32, 3), 10, width=4).save(backbone)
    for path in recipes:
        overrides = []
        if path.stem in PREREQUISITES:
            key = PREREQUISITES[path.stem]
            if not (ROOT / "classifiers" / "frog_fast_backbone.keras").is_file():
                # without it, the one line a user sees
                with pytest.raises(RecipeError, match=f"{re.escape(key)}: .* is not a file; "
                                                      "expected a \\.keras classifier "
                                                      "\\(make one with gankit "
                                                      "train-classifier\\)"):
                    load_recipe(path)
            overrides = [f"{key}={backbone}"]
        recipe = load_recipe(path, overrides)
        assert recipe.name == path.stem
