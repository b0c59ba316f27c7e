"""``gankit sample``: a grid from a run's newest (or a named) checkpoint or its generator.keras."""

import shutil

import numpy as np
import pytest
import yaml
from PIL import Image
from reliability_kit import STEPS, checkpoint_dir, gankit, ok, recipe_dict

from gankit.app.sample import sample_grid
from gankit.cli.main import main
from gankit.errors import GankitError
from gankit.util.images import make_grid, to_uint8


def _pixels(path):
    return np.asarray(Image.open(path))


def test_the_sample_command_writes_a_grid_png(reference_run, tmp_path):
    out = tmp_path / "grids" / "grid.png"
    result = ok(gankit("sample", reference_run, "-n", 5, "--seed", 3, "--out", out))
    assert result.stdout.strip() == str(out)
    image = Image.open(out)
    # 5 images of 24x24 in 3 columns and 2 rows with 1-pixel gaps, drawn at twice the size.
    assert image.format == "PNG" and image.mode == "RGB"
    assert image.size == (2 * (3 * 25 + 1), 2 * (2 * 25 + 1))


def test_the_grid_shows_the_saved_generator_in_the_datasets_value_range(reference_run,
                                                                         tmp_path):
    import keras

    out = sample_grid(reference_run, n=4, seed=11, out=tmp_path / "g.png")
    model = keras.models.load_model(reference_run / "generator.keras", compile=False)
    latents = np.random.default_rng(11).standard_normal((4, 8)).astype(np.float32)
    expected = make_grid(to_uint8(np.asarray(model(latents)), (0.0, 1.0)))
    assert np.array_equal(_pixels(out)[::2, ::2], expected)


def test_same_seed_same_grid_and_the_checkpoint_can_be_chosen(reference_run, tmp_path):
    grid = lambda name, **kw: _pixels(sample_grid(reference_run, n=9, out=tmp_path / name, **kw))
    latest = grid("a.png", seed=1)
    assert np.array_equal(grid("b.png", seed=1), latest)
    assert not np.array_equal(grid("c.png", seed=2), latest)
    assert np.array_equal(grid("d.png", seed=1, checkpoint=STEPS), latest)
    assert not np.array_equal(grid("e.png", seed=1, checkpoint=STEPS - 4), latest)


def test_without_checkpoints_the_saved_generator_is_used(copy_of_reference, reference_run,
                                                         tmp_path):
    latest = _pixels(sample_grid(reference_run, n=4, seed=5, out=tmp_path / "a.png"))
    shutil.rmtree(copy_of_reference / "checkpoints")
    path = sample_grid(copy_of_reference, n=4, seed=5)
    assert path == copy_of_reference / "samples" / "sample_seed5.png"
    assert np.array_equal(_pixels(path), latest)


def test_a_corrupted_newest_checkpoint_is_skipped_with_a_warning(copy_of_reference, tmp_path,
                                                                 capsys):
    run = copy_of_reference
    (checkpoint_dir(run, STEPS) / "state.data-00000-of-00001").write_bytes(b"garbage")
    assert main(["sample", str(run), "-n", "4", "--out", str(tmp_path / "a.png")]) == 0
    assert f"gankit: warning: checkpoint {checkpoint_dir(run, STEPS)} is unusable" \
        in capsys.readouterr().err
    previous = sample_grid(run, n=4, checkpoint=STEPS - 2, out=tmp_path / "b.png")
    assert np.array_equal(_pixels(tmp_path / "a.png"), _pixels(previous))


def test_with_every_checkpoint_corrupted_the_saved_generator_is_used(copy_of_reference,
                                                                     reference_run, tmp_path):
    latest = _pixels(sample_grid(reference_run, n=4, out=tmp_path / "a.png"))
    for ckpt in (copy_of_reference / "checkpoints").iterdir():
        (ckpt / "state.data-00000-of-00001").write_bytes(b"garbage")
    with pytest.warns(UserWarning) as caught:
        path = sample_grid(copy_of_reference, n=4, out=tmp_path / "b.png")
    assert "no usable checkpoint" in str(caught[-1].message)
    assert str(caught[-1].message).endswith(f"using {copy_of_reference / 'generator.keras'}")
    assert np.array_equal(_pixels(path), latest)
    (copy_of_reference / "generator.keras").unlink()
    with pytest.warns(UserWarning), pytest.raises(GankitError, match="no usable checkpoint"):
        sample_grid(copy_of_reference, n=4, out=tmp_path / "c.png")


@pytest.mark.parametrize("args,message", [
    (["-n", "0"], "-n must be between 1 and 10,000, got 0"),
    (["--seed", "-1"], "--seed must be between 0 and 2**63 - 1"),
    (["--checkpoint", "7"], "has no checkpoint of step 7; available steps: 36, 38, 40"),
], ids=["n-zero", "negative-seed", "missing-step"])
def test_bad_sample_requests_are_one_line_errors(reference_run, capsys, args, message):
    assert main(["sample", str(reference_run), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit: error:") and message in err and "\n" not in err


def test_sampling_what_is_not_a_run_fails_clearly(tmp_path, capsys):
    with pytest.raises(GankitError, match="not a gankit run directory"):
        sample_grid(tmp_path)
    with pytest.raises(GankitError, match="does not exist"):
        sample_grid(tmp_path / "missing")
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe_dict(tmp_path)))
    with pytest.raises(GankitError, match="no checkpoint and no generator.keras"):
        sample_grid(tmp_path)


def test_an_unwritable_sample_output_is_a_clear_error(reference_run, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(GankitError, match="cannot write .*a-file/grid.png"):
        sample_grid(reference_run, n=1, out=blocker / "grid.png")



@pytest.mark.parametrize("args", [["--label", "frog"], ["--per-class", "2"]],
                         ids=["label", "per-class"])
def test_class_options_are_refused_for_an_unconditional_run(reference_run, capsys, args):
    assert main(["sample", str(reference_run), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"gankit: error: {args[0]}: {reference_run} has an unconditional generator "
                   f"(no num_classes): its images are of no chosen class")


def test_a_truncated_grid_draws_truncated_latents_beside_the_plain_one(copy_of_reference,
                                                                       capsys):
    import keras

    from gankit.util.latents import draw_latents

    run = copy_of_reference
    shutil.rmtree(run / "checkpoints")  # the saved generator, so the test can call it too
    assert main(["sample", str(run), "-n", "4", "--seed", "11", "--truncation", "0.5"]) == 0
    path = run / "samples" / "sample_seed11_truncation0.5.png"
    assert capsys.readouterr().out.strip() == str(path)
    model = keras.models.load_model(run / "generator.keras", compile=False)
    latents = draw_latents(np.random.default_rng(11), (4, 8), 0.5)
    assert np.abs(latents).max() <= 0.5
    expected = make_grid(to_uint8(np.asarray(model(latents)), (0.0, 1.0)))
    assert np.array_equal(_pixels(path)[::2, ::2], expected)
    plain = sample_grid(run, n=4, seed=11)
    assert plain == run / "samples" / "sample_seed11.png"  # not overwritten by the other
    assert not np.array_equal(_pixels(plain), _pixels(path))


@pytest.mark.parametrize("value", ["0", "-1", "11", "nan", "inf", "1e30"])
def test_a_bad_truncation_is_one_line_before_tensorflow(tmp_path, value):
    import subprocess
    import sys

    code = ("import sys; from gankit.cli.main import main; "
            f"code = main(['sample', {str(tmp_path / 'no-run')!r}, '--truncation', {value!r}]); "
            "print(code, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["2", "False"]
    err = out.stderr.strip()
    assert err.startswith("gankit: error: --truncation must be between 0.01 and 10") and \
        "\n" not in err, err
