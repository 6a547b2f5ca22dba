"""Named recipes, the command line that resolves them, and the strategy choice (no TensorFlow needed)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from bench.cli import main
from bench.training import recipes, strategy
from bench.training.train_command import add_arguments, resolve_recipe
from data.errors import UserError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_mmseg_recipes_are_the_published_schedule_with_their_published_results():
    for name, steps, miou in (("mmseg-40k", 40_000, 77.85), ("mmseg-80k", 80_000, 78.55)):
        r = recipes.get(name)
        assert (r.model, r.preset, r.steps, r.batch, r.crop, r.lr) == (
            "pspnet",
            "mmseg",
            steps,
            8,
            (512, 1024),
            0.01,
        )
        assert (r.weight_decay, r.scale_range, r.flip, r.sync_bn, r.aux_weight) == (
            5e-4,
            (0.5, 2.0),
            True,
            True,
            0.4,
        )
        published = r.published()  # read from the reference table, the figures' one home
        assert published.miou == miou and (published.split, published.protocol) == ("val", "single-scale")
        assert "mmsegmentation" in published.source and published.url.startswith("https://github.com/")


def test_cpu_recipes_keep_bench_runs_defaults():
    assert recipes.default_recipe("pspnet", "synthetic").name == "cpu-synthetic"
    assert recipes.default_recipe("pspnet-seed", "synthetic").name == "cpu-synthetic-light"
    assert recipes.default_recipe("fcn", "real").name == "cpu-real"
    assert recipes.get("cpu-synthetic").steps == 300 and recipes.get("cpu-real").crop == (512, 512)


def test_recipes_command_lists_mmseg_80k_without_importing_tensorflow():
    code = "import sys\nfrom bench.cli import main\nmain(['recipes'])\nprint('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert lines[-1] == "False"
    assert any(
        line.startswith("mmseg-80k") and "pspnet:mmseg" in line and "512x1024" in line for line in lines
    )
    assert any("should reach 78.55 val mIoU" in line for line in lines)


def test_flags_override_the_named_recipe(tmp_path):
    r = resolve_recipe(
        parse("--recipe", "mmseg-80k", "--steps", "10", "--crop", "64x128", "--out", str(tmp_path))
    )
    assert (r.name, r.model, r.preset, r.steps, r.crop, r.batch, r.weight_decay) == (
        "mmseg-80k",
        "pspnet",
        "mmseg",
        10,
        (64, 128),
        8,
        5e-4,
    )
    plain = resolve_recipe(parse("--model", "fcn", "--steps", "5", "--out", str(tmp_path)))
    assert (plain.name, plain.batch, plain.crop, plain.lr, plain.weight_decay) == (
        "",
        8,
        (512, 512),
        0.01,
        1e-4,
    )


def test_missing_model_steps_or_unknown_recipe_are_user_errors(tmp_path, capsys):
    with pytest.raises(UserError, match="give --model"):
        resolve_recipe(parse("--steps", "5", "--out", str(tmp_path)))
    with pytest.raises(UserError, match="give --steps"):
        resolve_recipe(parse("--model", "fcn", "--out", str(tmp_path)))
    assert main(["train", "--recipe", "mmseg-160k", "--out", str(tmp_path)]) == 2
    assert "unknown recipe 'mmseg-160k'" in capsys.readouterr().err and "mmseg-80k" in recipes.table()


def test_auto_strategy_follows_tf_config_then_devices():
    config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert strategy.choose("auto", tf_config=config, gpus=4, cpu_replicas=None) == "multiworker"
    assert strategy.choose("auto", tf_config=None, gpus=2, cpu_replicas=None) == "mirrored"
    assert strategy.choose("auto", tf_config=None, gpus=1, cpu_replicas=None) == "default"
    assert strategy.choose("auto", tf_config=None, gpus=0, cpu_replicas=2) == "mirrored"
    with pytest.raises(UserError, match="needs TF_CONFIG"):
        strategy.choose("multiworker", tf_config=None, gpus=0, cpu_replicas=None)
    with pytest.raises(UserError, match="--cpu-replicas 2 needs --strategy mirrored"):
        strategy.choose("default", tf_config=None, gpus=0, cpu_replicas=2)


def test_chief_is_the_chief_task_else_worker_zero():
    workers = {"worker": ["a:1", "b:2"]}
    assert strategy.chief_of({"cluster": workers, "task": {"type": "worker", "index": 0}})
    assert not strategy.chief_of({"cluster": workers, "task": {"type": "worker", "index": 1}})
    with_chief = {"chief": ["c:0"], **workers}
    assert strategy.chief_of({"cluster": with_chief, "task": {"type": "chief", "index": 0}})
    assert not strategy.chief_of({"cluster": with_chief, "task": {"type": "worker", "index": 0}})


@pytest.mark.parametrize(
    "text",
    ["{not json", json.dumps({"cluster": {"worker": ["a:1"]}}), json.dumps({"cluster": {}, "task": {}})],
)
def test_malformed_tf_config_names_the_variable_and_the_fix(text, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(UserError, match='TF_CONFIG is not a usable cluster configuration.*"task"'):
        strategy.read_tf_config()
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}})
    )
    with pytest.raises(UserError, match="task index 3"):
        strategy.read_tf_config()
    monkeypatch.setenv("TF_CONFIG", "  ")
    assert strategy.read_tf_config() is None


def test_a_row_names_the_recipe_and_what_was_changed_from_it():
    r = recipes.get("mmseg-80k")
    meta = {"recipe": "mmseg-80k", "model": "pspnet", "preset": "mmseg", "target_steps": r.steps, "batch": 8}
    meta |= {
        "crop": [512, 1024],
        "lr": 0.01,
        "weight_decay": 5e-4,
        "aux_weight": 0.4,
        "scale_range": [0.5, 2.0],
    }
    assert recipes.label(meta) == "mmseg-80k"
    assert recipes.label(meta | {"target_steps": 10, "crop": [64, 128]}) == "mmseg-80k (changed: steps, crop)"
    assert recipes.label({"recipe": "cpu-synthetic", "target_steps": 300, "model": "fcn"}) == "cpu-synthetic"
    assert recipes.label({}) == "" and recipes.label({"recipe": "someone-elses"}) == "someone-elses"


def test_bench_run_says_up_front_what_it_will_do_and_about_how_long(tmp_path, monkeypatch):
    from bench.training import default_checkpoint

    monkeypatch.setattr("bench.common.paths.SYNTHETIC_ROOT", tmp_path / "none")
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    line = default_checkpoint.plan_line("pspnet", None, None, "val", root=tmp_path)
    recipe = recipes.RECIPES[recipes.SYNTHETIC_DEFAULT]
    assert "generating the synthetic set first" in line
    assert (
        f"training the cpu preset for {recipe.steps} steps once (about {recipe.cpu_minutes:.1f} min" in line
    )
    assert line.endswith("then predicting and scoring the val split: about 4 min in all")
    real = default_checkpoint.plan_line("pspnet", str(tmp_path), None, "val", root=tmp_path)
    assert "time not measured here" in real and "the progress bar shows the ETA" in real


def test_the_default_make_bench_recipe_fits_the_six_minute_budget():
    """1.5 min for install, data, predict and score beside the measured training minutes (README)."""
    recipe = recipes.RECIPES[recipes.SYNTHETIC_DEFAULT]
    assert recipe.cpu_minutes is not None and recipe.cpu_minutes + 1.5 <= 6


def test_a_cached_checkpoint_of_other_settings_is_moved_aside_and_retrained(tmp_path, monkeypatch, capsys):
    import dataclasses

    from bench.common.datasets import Dataset
    from bench.sources import keras_checkpoint
    from bench.training import default_checkpoint, train

    recipe = recipes.RECIPES[recipes.SYNTHETIC_DEFAULT]
    out = default_checkpoint.cache_folder("pspnet", "synthetic-v1-256x512", "cpu", 0, tmp_path)
    out.mkdir(parents=True)
    (out / "ckpt-000800.keras").write_bytes(b"old")
    old = {
        "recipe": recipe.name,
        "steps": 800,
        "target_steps": 800,
        "crop": [256, 256],
        "batch": recipe.batch,
    }
    monkeypatch.setattr(keras_checkpoint, "read_metadata", lambda path: old)
    trained = []
    monkeypatch.setattr(
        train, "train", lambda r, root, folder, run: trained.append((r, folder, run)) or "new"
    )
    got = default_checkpoint.ensure_checkpoint(
        "pspnet", Dataset(tmp_path, "synthetic-v1-256x512", "synthetic"), preset="cpu", recipe=recipe,
        seed=0, root=tmp_path, progress=False,
    )  # fmt: skip
    assert got == "new" and not trained[0][2].resume and trained[0][0].steps == recipe.steps
    assert "run the same command again" in trained[0][2].resume_hint  # bench run has no --resume flag
    assert (out.with_name(out.name + "-previous") / "ckpt-000800.keras").read_bytes() == b"old"
    assert "trained with other settings (steps, crop)" in capsys.readouterr().out
    same = {
        **old,
        "steps": recipe.steps,
        "target_steps": recipe.steps,
        "crop": list(recipe.crop),
        "lr": recipe.lr,
    }
    (out / "ckpt-000300.keras").parent.mkdir(exist_ok=True)
    (out / f"ckpt-{recipe.steps:06d}.keras").write_bytes(b"current")
    monkeypatch.setattr(keras_checkpoint, "read_metadata", lambda path: same)
    assert default_checkpoint.ensure_checkpoint(
        "pspnet", Dataset(tmp_path, "synthetic-v1-256x512", "synthetic"), preset="cpu",
        recipe=dataclasses.replace(recipe), seed=0, root=tmp_path, progress=False,
    ).name == f"ckpt-{recipe.steps:06d}.keras"  # fmt: skip
    assert len(trained) == 1
