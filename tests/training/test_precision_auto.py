"""``train.precision: auto``: the rule (CPU flags, GPU compute capability), the default of
every recipe but the article's, the one-line warning for an emulated policy (``gankit
validate`` before TensorFlow, ``gankit run``), and what a run records of its choice
(run.json, the start-up line, report.html, a resume on another machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gankit.cli.main import main
from gankit.recipe.validation import load_recipe
from gankit.testing import run_recipe, write_image_folder
from gankit.training import precision
from gankit.training.precision import Device, choose_for, emulation_warning
from gankit.util import machine

ROOT = Path(__file__).parents[2]
AMX = machine.CPU("Intel Xeon", "x86_64", frozenset({"avx2", "avx512f", "amx_bf16",
                                                     "avx512_bf16"}))
ZEN4 = machine.CPU("AMD EPYC 9004", "x86_64", frozenset({"avx2", "avx512f", "avx512_bf16"}))
AVX2 = machine.CPU("AMD EPYC 7002", "x86_64", frozenset({"avx2", "fma"}))
ARM = machine.CPU("Neoverse-V1", "aarch64", frozenset({"bf16", "sve"}))
UNKNOWN = machine.CPU("unknown CPU", "x86_64", frozenset(), known=False)


@pytest.mark.parametrize("cpu, policy, reason", [
    (AMX, "mixed_bfloat16", "AMX and AVX-512 BF16"),
    (ZEN4, "mixed_bfloat16", "AVX-512 BF16"),
    (AVX2, "float32", "no AMX or AVX-512 BF16: bfloat16 would be emulated, about 10x slower"),
    (ARM, "float32", "no AMX or AVX-512 BF16"),  # unmeasured: the safe choice
    (UNKNOWN, "float32", "unknown"),
])
def test_auto_on_a_cpu_follows_its_bfloat16_units(cpu, policy, reason):
    choice = choose_for("auto", [Device("cpu", cpu.model)], cpu)
    assert (choice.policy, choice.requested, choice.warning) == (policy, "auto", None)
    assert reason in choice.reason
    assert choice.describe() == f"{policy} (auto: {choice.reason})"


@pytest.mark.parametrize("cc, policy", [((9, 0), "mixed_bfloat16"), ((8, 0), "mixed_bfloat16"),
                                        ((8, 6), "mixed_bfloat16"), ((7, 5), "mixed_float16"),
                                        ((7, 0), "mixed_float16"), ((6, 1), "float32"),
                                        (None, "float32")])
def test_auto_on_a_gpu_follows_its_compute_capability(cc, policy):
    choice = choose_for("auto", [Device("gpu", "NVIDIA X", cc)], AVX2)
    assert choice.policy == policy
    assert "NVIDIA X, compute capability" in choice.reason


def test_devices_that_disagree_fall_back_to_float32():
    devices = [Device("gpu", "A100", (8, 0)), Device("gpu", "T4", (7, 5))]
    assert choose_for("auto", devices, AVX2).policy == "float32"
    same = [Device("gpu", "A100", (8, 0)), Device("gpu", "A100", (8, 0))]
    assert choose_for("auto", same, AVX2).policy == "mixed_bfloat16"


def test_a_forced_policy_is_kept_and_warned_about_only_where_it_is_emulated():
    cpu = [Device("cpu")]
    text = choose_for("mixed_bfloat16", cpu, AVX2).warning
    assert text.startswith("train.precision mixed_bfloat16 is emulated on this CPU, AMD EPYC "
                           "7002 (no AMX or AVX-512 BF16)")
    assert "about 10x slower than float32" in text and "auto chooses float32 here" in text
    assert "\n" not in text
    assert choose_for("mixed_bfloat16", cpu, AVX2).policy == "mixed_bfloat16"
    assert choose_for("mixed_bfloat16", cpu, ZEN4).warning is None
    assert "auto chooses mixed_bfloat16 here" in choose_for("mixed_float16", cpu, ZEN4).warning
    for policy in ("float32", "auto"):
        assert emulation_warning(policy, cpu, AVX2) is None
    assert emulation_warning("mixed_float16", [Device("gpu", "T4", (7, 5))], AVX2) is None


def test_cpuinfo_is_parsed_on_x86_and_arm():
    x86 = machine.parse_cpuinfo("processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu "
                                "avx2 avx512f avx512_bf16\n", "x86_64")
    assert (x86.model, x86.bf16_units, x86.known) == ("AMD EPYC 9R14", ("avx512_bf16",), True)
    arm = machine.parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd bf16\n", "aarch64")
    assert arm.known and "bf16" in arm.flags and arm.bf16_units == ()
    assert not machine.parse_cpuinfo("", "x86_64").known


def test_every_recipe_but_the_articles_defaults_to_auto(tmp_path):
    assert load_recipe(ROOT / "recipes" / "frog_dcgan.yaml").train.precision == "float32"
    for name in ("frog_fast", "cifar10_conditional", "frog_sngan", "frog_wgan_gp"):
        assert load_recipe(ROOT / "recipes" / f"{name}.yaml").train.precision == "auto", name
    raw = yaml.safe_load((ROOT / "recipes" / "frog_sngan.yaml").read_text())
    raw["train"].pop("precision", None)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    assert load_recipe(tmp_path / "r.yaml").train.precision == "auto"


def test_validate_warns_in_one_line_before_tensorflow_loads(tmp_path):
    code = ("import sys; from gankit.util import machine; from gankit.training import precision; "
            "from gankit.cli.main import main; "
            "machine.cpu = lambda: machine.CPU('AMD EPYC 7002', 'x86_64', frozenset({'avx2'})); "
            "machine.gpu_may_be_present = lambda: False; "
            f"code = main(['validate', {str(ROOT / 'recipes' / 'frog_fast.yaml')!r}, "
            "'--set', 'train.precision=mixed_bfloat16']); "
            "assert 'tensorflow' not in sys.modules; sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "gankit: warning: train.precision mixed_bfloat16 is emulated on this CPU"), lines


@pytest.fixture
def tiny(tmp_path) -> Path:
    raw = yaml.safe_load((ROOT / "recipes" / "frog_fast.yaml").read_text())
    raw.pop("callbacks")
    raw["generator"].update(latent_dim=8, base_filters=4)
    raw["discriminator"].update(base_filters=4)
    raw["dataset"] = {"type": "image_folder", "scale": [-1.0, 1.0],
                      "path": str(write_image_folder(tmp_path / "img", 8, 32, 32))}
    raw["train"].update(batch_size=4, max_minutes=None, sample_every=2, grid_every=4,
                        grid_size=2, checkpoint_every=2)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _on(monkeypatch, cpu):
    monkeypatch.setattr(machine, "cpu", lambda: cpu)


def test_a_run_records_its_choice_and_a_resume_elsewhere_says_it_differs(tiny, tmp_path,
                                                                           monkeypatch):
    _on(monkeypatch, ZEN4)
    run = run_recipe(tiny, tmp_path / "run", steps=2)
    assert "precision mixed_bfloat16 (auto: this CPU has AVX-512 BF16)" in run.stderr
    status = json.loads((run.run_dir / "run.json").read_text())
    assert status["precision"] == {"requested": "auto", "policy": "mixed_bfloat16",
                                   "reason": "this CPU has AVX-512 BF16"}
    report = (run.run_dir / "report.html").read_text()
    assert "mixed_bfloat16 (train.precision: auto; this CPU has AVX-512 BF16)" in report

    _on(monkeypatch, AVX2)  # the same run resumed on a CPU without bfloat16 units
    code = main(["resume", str(run.run_dir), "--quiet", "--set", "train.steps=4"])
    assert code == 0
    status = json.loads((run.run_dir / "run.json").read_text())
    assert status["precision"]["policy"] == "float32"
    assert status["precision"]["history"] == [{"policy": "mixed_bfloat16", "until_step": 2}]
    assert status["step"] == 4


def test_the_resume_notice_is_printed(tiny, tmp_path, monkeypatch, capsys):
    _on(monkeypatch, ZEN4)
    run = run_recipe(tiny, tmp_path / "run", steps=2)
    status = json.loads((run.run_dir / "run.json").read_text())
    status["precision"]["history"] = 7  # a hand-edited record does not stop the resume
    (run.run_dir / "run.json").write_text(json.dumps(status))
    _on(monkeypatch, AVX2)
    capsys.readouterr()
    assert main(["resume", str(run.run_dir), "--quiet", "--set", "train.steps=4"]) == 0
    err = capsys.readouterr().err
    assert ("train.precision auto chose float32 on this machine (this CPU has no AMX or "
            "AVX-512 BF16") in err
    assert "the run's steps before 2 computed in mixed_bfloat16" in err
    history = json.loads((run.run_dir / "run.json").read_text())["precision"]["history"]
    assert history == [{"policy": "mixed_bfloat16", "until_step": 2}]


def test_run_warns_about_a_forced_emulated_policy_and_trains(tiny, tmp_path, monkeypatch):
    _on(monkeypatch, AVX2)
    run = run_recipe(tiny, tmp_path / "run", steps=2,
                     overrides=["train.precision=mixed_bfloat16"])
    warned = [line for line in run.stderr.splitlines() if "is emulated" in line]
    assert len(warned) == 1 and warned[0].startswith("gankit: warning: train.precision "
                                                     "mixed_bfloat16 is emulated on this CPU")
    status = json.loads((run.run_dir / "run.json").read_text())
    assert status["precision"]["policy"] == "mixed_bfloat16"
    assert status["precision"]["reason"] == "set in the recipe"


def test_precision_module_needs_no_tensorflow():
    code = ("import sys; from gankit.training.precision import choose_for; "
            "choose_for('auto', []); assert 'tensorflow' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
    assert precision.CHOICES[0] == "auto"


def test_a_oneDNN_cap_below_the_units_counts_as_no_units_and_forced_bfloat16_is_refused():
    capped = machine.CPU("AMD EPYC 9004", "x86_64", ZEN4.flags, isa_cap="AVX2")
    choice = choose_for("auto", [Device("cpu")], capped)
    assert choice.policy == "float32"
    assert choice.reason == "ONEDNN_MAX_CPU_ISA=AVX2 keeps oneDNN from this CPU's AVX-512 BF16"
    with pytest.raises(Exception, match="cannot run with ONEDNN_MAX_CPU_ISA=AVX2") as caught:
        choose_for("mixed_bfloat16", [Device("cpu")], capped)
    assert "\n" not in str(caught.value)
    choose_for("mixed_bfloat16", [Device("gpu", "A100", (8, 0))], capped)  # a GPU trains
    for cap in ("avx512_core_bf16", "AVX512_CORE_AMX", "ALL", "not-an-isa"):
        uncapped = machine.CPU("AMD EPYC 9004", "x86_64", ZEN4.flags, isa_cap=cap)
        assert uncapped.bf16_units == ("avx512_bf16",), cap
    amx_capped = machine.CPU("Xeon", "x86_64", AMX.flags, isa_cap="AVX512_CORE_BF16")
    assert amx_capped.bf16_units == ("avx512_bf16",)


def test_validate_and_run_refuse_bfloat16_under_the_cap_before_tensorflow(tmp_path):
    env = {**__import__("os").environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    images = write_image_folder(tmp_path / "img", 2, 32, 32)
    code = ("import sys; from gankit.util import machine; from gankit.cli.main import main; "
            "machine.cpu = lambda: machine.parse_cpuinfo('model name : EPYC\\nflags : avx2 "
            "avx512_bf16\\n', 'x86_64', 'AVX2'); machine.gpu_may_be_present = lambda: False; "
            f"code = main([sys.argv[1], {str(ROOT / 'recipes' / 'frog_fast.yaml')!r}, '--set', "
            "'train.precision=mixed_bfloat16', '--set', "
            f"'dataset={{type: image_folder, path: {images}}}', '--out', "
            f"{str(tmp_path / 'run')!r}][:None if sys.argv[1] == 'run' else 4]); "
            "assert 'tensorflow' not in sys.modules; sys.exit(code)")
    for command in ("validate", "run"):
        result = subprocess.run([sys.executable, "-c", code, command], capture_output=True,
                                text=True, timeout=120, env=env)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("gankit: error: train.precision mixed_bfloat16 cannot "
                                        "run with ONEDNN_MAX_CPU_ISA=AVX2")
        assert result.stderr.count("\n") == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("record", [
    {"policy": "float32", "history": {"a": 1}}, {"policy": "float32", "history": "xyz"},
    {"policy": 5}, "float32", [1, 2], {"policy": "float32", "history": [1, {"policy": []}]},
    {"policy": "float32", "reason": {"deep": [1] * 3}, "requested": None},
])
def test_a_hostile_precision_record_in_run_json_still_gives_a_report(tmp_path, record):
    from gankit.app.report import write_report

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "completed", "precision": record}))
    page = write_report(run).read_text()
    assert "<html" in page.lower()
