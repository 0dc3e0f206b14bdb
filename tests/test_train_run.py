"""End-to-end fine-tuning runs on the tiny corpus: what each method freezes, trains and writes."""

import json
import logging
import os

import jax
import numpy as np
import pytest
from conftest import write_train_config
from flax.traverse_util import flatten_dict

from speechft_jax.checkpoints import load_pretrained
from speechft_jax.train import TrainingDiverged, load_train_config, train
from speechft_jax.train.metrics_log import read_metrics
from speechft_jax.train.start_encoder import init_fn, start_encoder


def _flat(params):
    return {"/".join(k): np.asarray(v) for k, v in flatten_dict(jax.device_get(params)).items()}


def _theta_0(config):
    encoder_config = start_encoder(config.model).config
    return _flat(jax.jit(init_fn(encoder_config, config.model.init_seed))())


def _encoder(directory):
    return _flat(load_pretrained(directory).params)


def _split(flat):
    cnn = {k: v for k, v in flat.items() if k.startswith("feature_extractor/")}
    return cnn, {k: v for k, v in flat.items() if k not in cnn}


@pytest.fixture(scope="module")
def stable(stable_run):
    path, result = stable_run
    config = load_train_config(path)
    return config, result, _theta_0(config)


def test_cnn_frozen_encoder_frozen_during_warmup_then_trained(stable):
    config, result, theta_0 = stable
    (early_dir,) = result.early_dirs           # exported at beta = 25 % of the run: end of warm-up
    assert early_dir.name == "step_000004"
    warm, final = _encoder(early_dir), _encoder(result.encoder_dir)
    for key, value in theta_0.items():
        np.testing.assert_array_equal(warm[key], value, err_msg=f"{key} moved during the head-only warm-up")
    cnn0, rest0 = _split(theta_0)
    cnn1, rest1 = _split(final)
    for key, value in cnn0.items():
        np.testing.assert_array_equal(cnn1[key], value, err_msg=f"CNN parameter {key} changed")
    changed = [k for k in rest0 if not np.array_equal(rest0[k], rest1[k])]
    assert len(changed) > 0.9 * len(rest0), f"only {len(changed)} of {len(rest0)} encoder arrays trained"


def test_run_writes_its_outputs(stable):
    config, result, _ = stable
    out = result.output_dir
    records = read_metrics(out)
    assert [r["step"] for r in records] == list(range(1, 17))
    assert all(np.isfinite(r["loss"]) and "pr/loss" in r and "grad_norm" in r for r in records)
    assert [r["encoder_lr"] for r in records[:4]] == [0.0] * 4 and records[4]["encoder_lr"] > 0
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert load_train_config(out / "config.yaml") == config   # the resolved config reloads as is
    assert json.loads((out / "labels" / "pr.vocab.json").read_text())["tokens"][:2] == ["<blank>", "<pad>"]
    assert sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit()) == [14, 16]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 16 and summary["final_loss"] == pytest.approx(records[-1]["loss"])
    # transformers loads the exported encoder
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModel.from_pretrained(result.encoder_dir)
    assert model.config.model_type == "hubert"


def test_rerun_of_a_finished_run_does_nothing(stable, caplog):
    caplog.set_level(logging.INFO, logger="speechft_jax")
    config, result, _ = stable
    again = train(config)
    assert again.encoder_dir == result.encoder_dir and "already finished" in caplog.text


def test_changed_config_in_the_same_directory_is_an_error(stable):
    from dataclasses import replace

    from speechft_jax.models.config import ConfigError

    config, _, _ = stable
    changed = replace(config, optimizer=replace(config.optimizer, steps=99))
    with pytest.raises(ConfigError, match=r"optimizer\.steps=16, the new config has 99"):
        train(changed)


def _distance(a, b):
    return float(np.sqrt(sum(np.sum((a[k].astype(np.float64) - b[k]) ** 2) for k in a)))


def test_l2_regularisation_pulls_toward_theta_0(stable, demo_corpus_tiny, tmp_path):
    config, result, theta_0 = stable
    path = write_train_config(tmp_path / "l2.yaml", demo_corpus_tiny, tmp_path / "run",
                              finetune={"l2_to_pretrained": 50.0})
    l2 = train(load_train_config(path))
    free, pulled = _distance(_encoder(result.encoder_dir), theta_0), _distance(_encoder(l2.encoder_dir), theta_0)
    assert pulled < 0.8 * free, (pulled, free)
    assert "l2_distance_sq" in read_metrics(l2.output_dir)[-1]


def test_lora_trains_only_low_rank_updates_of_its_targets(stable, demo_corpus_tiny, tmp_path):
    _, _, theta_0 = stable
    rank = 2
    path = write_train_config(tmp_path / "lora.yaml", demo_corpus_tiny, tmp_path / "run",
                              finetune={"lora": {"rank": rank, "alpha": 4.0, "targets": ["q_proj", "intermediate_dense"]}},
                              optimizer={"steps": 8, "beta": 0.0, "encoder_lr": 1e-2, "head_lr": 1e-3})
    merged = _encoder(train(load_train_config(path)).encoder_dir)
    targets = [k for k in theta_0 if k.endswith(("q_proj/kernel", "intermediate_dense/kernel"))]
    assert len(targets) == 4   # 2 layers x 2 targets
    for key, value in theta_0.items():
        if key in targets:
            delta = merged[key].astype(np.float64) - value
            assert np.abs(delta).max() > 0, f"{key} did not train"
            assert np.linalg.matrix_rank(delta, tol=1e-6 * np.abs(delta).max()) <= rank
        else:
            np.testing.assert_array_equal(merged[key], value, err_msg=f"{key} is not a LoRA target but changed")


def test_full_finetuning_trains_the_cnn(stable, demo_corpus_tiny, tmp_path):
    _, _, theta_0 = stable
    path = write_train_config(tmp_path / "full.yaml", demo_corpus_tiny, tmp_path / "run",
                              finetune={"freeze_cnn": False}, optimizer={"steps": 4, "beta": 0.0})
    cnn1, _ = _split(_encoder(train(load_train_config(path)).encoder_dir))
    cnn0, _ = _split(theta_0)
    assert all(not np.array_equal(cnn1[k], cnn0[k]) for k in cnn0 if k.endswith("kernel"))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(demo_corpus_tiny, tmp_path):
    path = write_train_config(tmp_path / "nan.yaml", demo_corpus_tiny, tmp_path / "run",
                              optimizer={"steps": 10, "beta": 0.0, "encoder_lr": 1e30, "head_lr": 1e30, "clip_norm": None},
                              checkpoint={"every_steps": 1, "keep": 3, "async_save": False})
    with pytest.raises(TrainingDiverged, match=r"^step (\d+): the loss is (nan|inf)") as info:
        train(load_train_config(path))
    bad_step = int(str(info.value).split(":")[0].split()[1])
    saved = sorted(int(p.name) for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and saved[-1] == bad_step - 1 and f"checkpoint is step {bad_step - 1}" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_non_finite_gradient_with_a_finite_loss_also_stops():
    from speechft_jax.train.loop import check_finite

    check_finite(3, {"loss": 2.5, "grad_norm": 1.0}, 2)  # finite: nothing happens
    for norm in (float("nan"), float("inf")):
        with pytest.raises(TrainingDiverged, match=rf"^step 3: the gradient norm is {norm} \(loss 2.5\); .*step 2$"):
            check_finite(3, {"loss": 2.5, "grad_norm": norm}, 2)
    with pytest.raises(TrainingDiverged, match=r"^step 7: the loss is nan \(grad norm 1.0\)"):
        check_finite(7, {"loss": float("nan"), "grad_norm": 1.0}, None)


def test_loss_decreases_on_the_phone_task(demo_corpus_tiny, tmp_path):
    # the demo corpus's phone-recognition task (its tiny preset), 100 steps from a random encoder
    path = write_train_config(tmp_path / "long.yaml", demo_corpus_tiny, tmp_path / "run", finetune={},
                              optimizer={"steps": 100, "beta": 0.1, "encoder_lr": 5e-4, "head_lr": 2e-3},
                              checkpoint={"every_steps": 1000})
    losses = [r["loss"] for r in read_metrics(train(load_train_config(path)).output_dir)]
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.4 * first, (first, last)


def test_multitask_with_gradient_accumulation(demo_corpus_tiny, tmp_path):
    tasks = [{"name": "pr", "kind": "ctc", "batch_size": 4, "num_buckets": 1,
              "data": {"type": "corpus", "corpus_dir": str(demo_corpus_tiny), "task": "pr"}},
             {"name": "spk", "kind": "classification", "batch_size": 4, "num_buckets": 1, "weight": 0.5,
              "max_seconds": 1.5, "data": {"type": "corpus", "corpus_dir": str(demo_corpus_tiny), "task": "sid"}}]
    path = write_train_config(tmp_path / "multi.yaml", demo_corpus_tiny, tmp_path / "run", tasks=tasks,
                              optimizer={"steps": 3, "beta": 0.0, "grad_accum": 2}, finetune={},
                              checkpoint={"every_steps": 3})
    result = train(load_train_config(path))
    records = read_metrics(result.output_dir)
    assert [r["step"] for r in records] == [1, 2, 3]
    for r in records:
        assert {"pr/loss", "spk/loss", "spk/accuracy"} <= set(r)
        assert r["loss"] == pytest.approx(r["pr/loss"] + 0.5 * r["spk/loss"], rel=1e-5)
    # 3 optimizer steps x 2 accumulated batches from each task's loader
    state = json.loads(next((result.output_dir / "checkpoints" / "3" / "loaders").glob("metadata")).read_text())
    assert {name: s["batch"] + s["epoch"] * 10_000 for name, s in state.items()} == {"pr": 6, "spk": 6}
    assert (result.output_dir / "labels" / "spk.classes.txt").is_file()


# ------------------------------------------------------------------------------ the run directory
def test_a_failed_start_does_not_claim_the_directory(demo_corpus_tiny, tmp_path, monkeypatch, caplog):
    """A run that stopped before its first checkpoint left only `config.yaml`: a fixed config
    starts over in the same directory (a lock file left by a dead process is no obstacle); once
    the directory holds a checkpoint, another setting is refused."""
    from speechft_jax.models.config import ConfigError
    from speechft_jax.train import loop
    from speechft_jax.train.run_lock import LOCK_NAME

    caplog.set_level(logging.INFO, logger="speechft_jax")
    run = tmp_path / "run"
    bad = write_train_config(tmp_path / "bad.yaml", demo_corpus_tiny, run, mesh={"fsdp": 3})
    with pytest.raises(ConfigError, match=r"mesh\.fsdp=3, expected a divisor"):
        train(load_train_config(bad))
    assert load_train_config(run / loop.CONFIG_NAME).mesh.fsdp == 3

    class Started(Exception):
        pass

    def started(*args, **kwargs):  # the run got past its directory checks: no need to train it
        raise Started

    monkeypatch.setattr(loop, "start_encoder", started)
    (run / LOCK_NAME).write_text("pid 999999 on host gone\n")  # left by a killed run
    fixed = write_train_config(tmp_path / "fixed.yaml", demo_corpus_tiny, run)
    with pytest.raises(Started):
        train(load_train_config(fixed))
    assert load_train_config(run / loop.CONFIG_NAME) == load_train_config(fixed)
    assert "has no checkpoint; starting over" in caplog.text
    (run / "checkpoints" / "2").mkdir()   # a complete checkpoint, as Orbax names one
    with pytest.raises(ConfigError, match=r"holds a run with mesh\.fsdp=1, the new config has 3"):
        train(load_train_config(bad))


def test_an_unwritable_output_dir_is_a_one_line_error_before_any_model_work(demo_corpus_tiny, tmp_path, monkeypatch):
    # tests run as root, where chmod does not block writes: a regular file where a directory must
    # be makes the path unwritable instead
    from speechft_jax.models.config import ConfigError
    from speechft_jax.train import loop

    monkeypatch.setattr(loop, "start_encoder", lambda *a, **k: pytest.fail("the model was built"))
    (tmp_path / "file").write_text("")
    path = write_train_config(tmp_path / "c.yaml", demo_corpus_tiny, tmp_path / "file" / "run")
    with pytest.raises(ConfigError, match=r"^output_dir: cannot write in .*/file/run \(Not a directory\)$"):
        train(load_train_config(path))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoints").write_text("")
    path = write_train_config(tmp_path / "c.yaml", demo_corpus_tiny, tmp_path / "run")
    with pytest.raises(ConfigError, match=r"^output_dir: cannot write in .*/run/checkpoints \(it is a file, not a directory\)$"):
        train(load_train_config(path))


def test_a_checkpoint_save_that_fails_mid_run_stops_at_once(demo_corpus_tiny, tmp_path, monkeypatch):
    """`checkpoints/` turns unwritable after the first checkpoint: the next save stops the run with
    one line (no background retries, no minutes-long wait) and the first checkpoint is kept."""
    import errno
    from pathlib import Path

    from speechft_jax.checkpoints import CheckpointError
    from speechft_jax.train.checkpointing import saved_steps

    run = tmp_path / "run"
    checkpoints = run / "checkpoints"
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        # as root, chmod does not block writes: refuse every new step directory instead, as an
        # unwritable checkpoints/ would, once the first checkpoint is complete
        if Path(path).parent == checkpoints and saved_steps(checkpoints):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    path = write_train_config(tmp_path / "c.yaml", demo_corpus_tiny, run, optimizer={"steps": 3, "beta": 0.0},
                              finetune={"early_checkpoints": []})
    with pytest.raises(CheckpointError, match=r"checkpoints: saving a checkpoint failed \(Permission denied: "
                                              r".*\); stopped, the last complete checkpoint is step 1$") as info:
        train(load_train_config(path))
    assert "\n" not in str(info.value)
    # Orbax saves the first step, then every 2: the save of step 2 failed
    assert saved_steps(checkpoints) == [1] and not (run / "encoder").exists()
    assert read_metrics(run)[-1]["step"] == 2   # stopped at the failed save, not steps later


def test_a_second_run_into_a_directory_in_use_is_refused(demo_corpus_tiny, tmp_path, capsys):
    from speechft_jax.train.__main__ import main
    from speechft_jax.train.run_lock import RunDirectoryInUse, run_directory_lock

    run = tmp_path / "run"
    run.mkdir()
    path = write_train_config(tmp_path / "c.yaml", demo_corpus_tiny, run)
    with run_directory_lock(run):   # the first run, still going
        with pytest.raises(RunDirectoryInUse, match=rf"^output_dir={run}: another run is using this directory "
                                                    rf"\(pid {os.getpid()} on host .+; lock .*\.lock\)"):
            train(load_train_config(path))
        assert main(["--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: output_dir=") and err.count("\n") == 1
    assert not (run / "config.yaml").exists()   # the second run wrote nothing


# ------------------------------------------------------------------------------ data beside the config
def test_a_folder_task_beside_its_config_trains_from_another_working_directory(demo_corpus_tiny, tmp_path,
                                                                               monkeypatch, capsys):
    """`data: {type: folder, path: clips}` is found beside the YAML file, wherever the command runs;
    `output_dir` stays relative to the working directory."""
    import shutil

    from speechft_jax.train.__main__ import main

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    records = [json.loads(line) for line in (demo_corpus_tiny / "ks.jsonl").read_text().splitlines()]
    for record in [r for r in records if r["split"] == "train"][:8]:
        clip = project / "clips" / record["keyword"] / record["path"].rsplit("/", 1)[-1]
        clip.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(demo_corpus_tiny / record["path"], clip)
    tasks = [{"name": "ks", "kind": "classification", "batch_size": 4, "num_buckets": 1,
              "data": {"type": "folder", "path": "clips"}}]
    path = write_train_config(project / "ks.yaml", demo_corpus_tiny, "run", tasks=tasks, finetune={},
                              optimizer={"steps": 2, "beta": 0.0}, checkpoint={"every_steps": 2})
    monkeypatch.chdir(elsewhere)
    assert main(["--config", str(path), "--quiet"]) == 0
    run = elsewhere / "run"
    assert [r["step"] for r in read_metrics(run)] == [1, 2] and "ks/accuracy" in read_metrics(run)[0]
    keywords = sorted({p.parent.name for p in (project / "clips").rglob("*.flac")})
    assert (run / "labels" / "ks.classes.txt").read_text().split() == keywords
    # the same file with the folder missing names both places it looked
    shutil.rmtree(project / "clips")
    capsys.readouterr()
    assert main(["--config", str(path), "--quiet", "--set", "output_dir=run2"]) == 2
    assert capsys.readouterr().err == (f"error: tasks.ks.data.path=clips: not found beside the config "
                                       f"({project / 'clips'}) nor in the working directory ({elsewhere / 'clips'})\n")
