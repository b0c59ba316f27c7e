"""What ``gankit resume`` / ``gankit run RECIPE --resume`` accept and refuse: corrupted
checkpoints, changed recipes, longer runs. These run the CLI in this process (TensorFlow is
loaded once), against copies of the session's uninterrupted reference run."""

import numpy as np
import pytest
import yaml
from reliability_kit import (
    STEPS,
    assert_same_run,
    checkpoint_dir,
    checkpoint_steps,
    file_digests,
    load_state,
    write_recipe,
)

from gankit.cli.main import main


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _everything_but_status(run):
    return {k: v for k, v in file_digests(run).items() if k != "run.json"}


def test_a_corrupted_newest_checkpoint_falls_back_to_the_previous_one_with_a_warning(
        copy_of_reference, reference_run, capsys):
    run = copy_of_reference
    newest = checkpoint_dir(run, STEPS)
    _flip_a_byte(newest / "state.data-00000-of-00001")
    assert main(["resume", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"gankit: warning: checkpoint {newest} is unusable" in err
    assert f"resuming {run} at step {STEPS - 2}" in err
    # The two steps were trained again and rewrote the damaged checkpoint exactly.
    assert_same_run(run, reference_run)


def test_no_usable_checkpoint_fails_clearly_and_never_starts_from_scratch(copy_of_reference,
                                                                          capsys):
    run = copy_of_reference
    for step in checkpoint_steps(run):
        path = checkpoint_dir(run, step) / "state.data-00000-of-00001"
        path.write_bytes(path.read_bytes()[:1000])
    before = _everything_but_status(run)
    assert main(["resume", str(run), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "gankit: error: no usable checkpoint in" in err and "Traceback" not in err
    assert all(f"ckpt-{s:08d}" in err for s in checkpoint_steps(run))
    assert _everything_but_status(run) == before


@pytest.mark.parametrize("how", ["recipe", "set"])
def test_resuming_with_a_changed_recipe_is_refused_listing_the_changed_keys(
        copy_of_reference, images, tmp_path, capsys, how):
    run = copy_of_reference
    before = file_digests(run)
    if how == "recipe":
        changed = write_recipe(tmp_path / "changed.yaml", images,
                               loss={"label_noise": 0.1}, train={"batch_size": 2})
        code = main(["run", str(changed), "--resume", str(run), "--quiet"])
    else:
        code = main(["resume", str(run), "--set", "loss.label_noise=0.1",
                     "--set", "train.batch_size=2", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing to resume with a changed recipe" in err and "--force" in err
    assert "loss.label_noise: 0.05 -> 0.1" in err
    assert "train.batch_size: 4 -> 2" in err
    assert "train.steps" not in err
    assert file_digests(run) == before


def test_a_changed_recipe_is_accepted_with_force(copy_of_reference, capsys):
    run = copy_of_reference
    assert main(["resume", str(run), "--set", "optimizers.generator.learning_rate=0.0002",
                 "--set", f"train.steps={STEPS + 4}", "--force", "--quiet"]) == 0
    assert f"resuming {run} at step {STEPS}" in capsys.readouterr().err
    assert checkpoint_steps(run)[-1] == STEPS + 4
    stored = yaml.safe_load((run / "recipe.yaml").read_text())
    assert stored["optimizers"]["generator"]["learning_rate"] == 0.0002
    assert stored["train"]["steps"] == STEPS + 4
    state = load_state(checkpoint_dir(run, STEPS + 4))
    iterations = [v for k, v in state.items()
                  if k.startswith("generator_optimizer/") and "iteration" in k]
    assert iterations == [STEPS + 4]  # the optimizer's step counter
    assert state["step/.ATTRIBUTES/VARIABLE_VALUE"] == STEPS + 4


def test_train_steps_may_be_extended_on_resume_and_match_a_longer_run(
        reference_run, recipe_file, images, tmp_path, capsys):
    run = tmp_path / "run"
    shorter = write_recipe(tmp_path / "short.yaml", images, train={"steps": STEPS // 2})
    assert main(["run", str(shorter), "--out", str(run), "--quiet"]) == 0
    assert checkpoint_steps(run)[-1] == STEPS // 2
    # The full-length recipe differs only in train.steps: no --force needed.
    assert main(["run", str(recipe_file), "--resume", str(run), "--quiet"]) == 0
    assert f"resuming {run} at step {STEPS // 2}" in capsys.readouterr().err
    assert_same_run(run, reference_run)
    assert yaml.safe_load((run / "recipe.yaml").read_text())["train"]["steps"] == STEPS
    assert all(np.isfinite(v).all() for k, v in load_state(checkpoint_dir(run, STEPS)).items()
               if k.startswith("generator/") and v.dtype.kind == "f")


@pytest.mark.parametrize("version, expected", [
    (None, "was it edited by hand?"),
    ("0.2.0", "the newest checkpoint was written by gankit 0.2.0"),
])
def test_a_checkpoint_of_another_recipe_digest_is_refused_naming_why(copy_of_reference, capsys,
                                                                     version, expected):
    import json

    run = copy_of_reference
    meta_file = checkpoint_dir(run, STEPS) / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["recipe_digest"] = "0" * 64
    if version is not None:
        meta["gankit_version"] = version
    meta_file.write_text(json.dumps(meta))
    assert main(["resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "--force" in err and len(err.strip().splitlines()) == 1
