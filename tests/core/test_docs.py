"""The docs describe the code: the recipe reference is regenerated and compared."""

from pathlib import Path

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


def test_every_shipped_recipe_validates():
    from gankit.recipe.validation import load_recipe

    recipes = sorted((ROOT / "recipes").glob("*.yaml"))
    assert len(recipes) >= 3
    for path in recipes:
        recipe = load_recipe(path)
        assert recipe.name == path.stem
