"""Determinism, and runs killed with SIGKILL (or stopped with Ctrl-C) then resumed, through the
real ``gankit`` command in subprocesses. Every resumed run must end bit-identical to the
uninterrupted reference run: weights, optimizer state, step, and every logged loss."""

import json
import os
import random
import re
import signal
import time

import pytest
from reliability_kit import (
    CHECKPOINT_EVERY,
    KEEP,
    STEPS,
    assert_same_run,
    assert_same_state,
    checkpoint_dir,
    checkpoint_steps,
    finish,
    gankit,
    kill,
    leftovers,
    load_state,
    ok,
    start_gankit,
    wait_until,
)


def test_same_recipe_and_seed_twice_gives_bit_identical_weights(reference_runs):
    reference_run, run = reference_runs
    assert_same_run(run, reference_run)
    for step in checkpoint_steps(reference_run):  # not only the last one
        assert_same_state(checkpoint_dir(run, step), checkpoint_dir(reference_run, step))
    # ...and the comparison is not vacuous: training did change the weights.
    first, last = (load_state(checkpoint_dir(reference_run, s))
                   for s in checkpoint_steps(reference_run)[::KEEP - 1])
    assert any((first[k] != last[k]).any() for k in first)


def test_only_the_newest_checkpoints_are_kept(reference_run):
    assert checkpoint_steps(reference_run) == [STEPS - CHECKPOINT_EVERY * i
                                               for i in reversed(range(KEEP))]
    assert leftovers(reference_run) == []


def test_sigkill_after_a_checkpoint_then_resume_matches_an_uninterrupted_run(
        reference_run, recipe_file, tmp_path):
    run = tmp_path / "run"
    proc = start_gankit("run", recipe_file, "--out", run, "--quiet")
    wait_until(lambda: 10 in checkpoint_steps(run), proc, what="checkpoint 10")
    kill(proc)
    assert proc.returncode == -signal.SIGKILL
    newest = checkpoint_steps(run)[-1]
    assert newest < STEPS, "the run finished before it was killed"
    assert _last_logged_step(run) - newest <= CHECKPOINT_EVERY  # at most N steps are lost
    # The documented alternative to `gankit resume`: the recipe again, with --resume.
    result = ok(gankit("run", recipe_file, "--resume", run, "--quiet"))
    resumed_at = None
    for line in result.stderr.splitlines():
        if "resuming" in line and " at step " in line:
            resumed_at = int(line.rsplit(" at step ", 1)[1].split()[0])
    assert resumed_at == newest, result.stderr
    assert_same_run(run, reference_run)


def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(
        reference_run, recipe_file, tmp_path):
    """Two kills, each just after a random step was logged: mid-step, while writing
    samples, or in the middle of a checkpoint write (every other step writes one)."""
    seed = int(os.environ.get("GANKIT_TEST_KILL_SEED", random.randrange(2 ** 32)))
    rng = random.Random(seed)
    run = tmp_path / "run"
    proc = start_gankit("run", recipe_file, "--out", run, "--quiet")
    logged, killed_at = 0, []
    while len(killed_at) < 2 and logged < STEPS - 1:
        target = rng.randint(logged + 1, STEPS - 1)
        wait_until(lambda: _training(run, proc) and _last_logged_step(run) >= target, proc,
                   what=f"step {target} (seed {seed})")
        time.sleep(rng.uniform(0.0, 0.03))
        kill(proc)
        logged = _last_logged_step(run)
        killed_at.append((logged, checkpoint_steps(run)[-1:]))
        proc = start_gankit("resume", run, "--quiet")
    out = finish(proc)
    print(f"seed {seed}: killed after (logged step, newest checkpoint) {killed_at}")
    assert proc.returncode == 0, f"seed {seed}, kills {killed_at}:\n{out}"
    assert_same_run(run, reference_run)


def _last_logged_step(run):
    try:
        rows = (run / "losses.csv").read_text().splitlines()[1:]
    except OSError:
        return 0
    return max((int(r.split(",")[0]) for r in rows if r.split(",")[0].isdigit()), default=0)


def _training(run, proc):
    try:
        return json.loads((run / "run.json").read_text()).get("pid") == proc.pid
    except (OSError, ValueError):
        return False


@pytest.mark.parametrize("sig, code, name", [(signal.SIGINT, 130, "Ctrl-C"),
                                             (signal.SIGTERM, 143, "SIGTERM")])
def test_ctrl_c_or_sigterm_saves_a_checkpoint_and_resumes_exactly(reference_run, recipe_file,
                                                                  tmp_path, sig, code, name):
    """SIGTERM is what SLURM, Kubernetes, `docker stop` and `timeout` send: it is treated
    like Ctrl-C (finish the step, checkpoint, mark the status), with exit code 143."""
    run = tmp_path / "run"
    proc = start_gankit("run", recipe_file, "--out", run, "--quiet")
    wait_until(lambda: 6 in checkpoint_steps(run), proc, what="checkpoint 6")
    out = kill(proc, sig)
    assert proc.returncode == code, out
    assert "gankit resume" in out and f"stopped by {name} after step" in out
    stopped = int(re.search(r"after step (\d+);", out).group(1))
    assert checkpoint_steps(run)[-1] == stopped < STEPS  # the step it stopped at, saved
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "interrupted" and status["step"] == stopped
    ok(gankit("resume", run, "--quiet"))
    assert_same_run(run, reference_run)


def test_sigkill_during_a_checkpoint_write_is_never_loaded_and_is_cleaned_up(
        reference_run, recipe_file, tmp_path):
    run = tmp_path / "run"
    # Test-only hook: the write of checkpoint 10 stops after state.data-00000-of-00001, before meta.json and
    # the rename into place.
    proc = start_gankit("run", recipe_file, "--out", run, "--quiet",
                        env={"GANKIT_TEST_PAUSE_IN_CHECKPOINT_WRITE": "10"})
    half = run / "checkpoints"
    wait_until(lambda: any((p / "state.data-00000-of-00001").exists() for p in half.glob(".tmp-ckpt-00000010-*")),
               proc, what="the write of checkpoint 10")
    kill(proc)
    assert proc.returncode == -signal.SIGKILL
    assert checkpoint_steps(run) == [4, 6, 8]
    assert leftovers(run) and all(n.startswith(".tmp-ckpt-00000010-") for n in leftovers(run))

    result = ok(gankit("resume", run, "--quiet"))
    assert f"resuming {run} at step 8" in result.stderr
    assert_same_run(run, reference_run)  # includes: no .tmp- folder left


def test_a_recipe_with_every_part_is_deterministic_and_resumes_exactly(
        full_reference_runs, full_recipe_file, tmp_path):
    """EMA + lazy R1 + DiffAugment + two discriminator updates per step: two runs are
    bit-identical, and a run killed after a checkpoint and resumed ends identical too."""
    reference, twin = full_reference_runs
    assert_same_run(twin, reference)
    state = load_state(checkpoint_dir(reference, STEPS))
    assert any(k.startswith("generator_ema/") for k in state)
    header = (reference / "losses.csv").read_text().splitlines()[0]
    assert "d_r1" in header
    run = tmp_path / "run"
    proc = start_gankit("run", full_recipe_file, "--out", run, "--quiet")
    wait_until(lambda: 10 in checkpoint_steps(run), proc, what="checkpoint 10")
    kill(proc)
    assert checkpoint_steps(run)[-1] < STEPS
    ok(gankit("resume", run, "--quiet"))
    assert_same_run(run, reference)
    assert (run / "generator_ema.keras").is_file()
