"""The training config schema: shipped configs parse; bad values are one-line errors naming the key."""

from pathlib import Path

import pytest

from speechft_jax.models.config import ConfigError
# the whole training file, its sweep section included (speechft_jax.pipeline)
from speechft_jax.pipeline import load_pipeline_config as load_train_config
from speechft_jax.train.config import TrainConfig

ROOT = Path(__file__).parents[1] / "configs"
SWEEPS = sorted((ROOT / "sweep").glob("*.yaml"))  # alpha-sweep configs, a schema of their own
# evaluation files (tests/test_evaluate_config.py parses them)
EVALUATIONS = sorted([*(ROOT / "eval").glob("*.yaml"), *(ROOT / "superb").glob("*.yaml")])
CONFIGS = sorted(p for p in ROOT.rglob("*.yaml") if p not in SWEEPS and p not in EVALUATIONS)


def test_configs_exist():
    names = {p.stem for p in CONFIGS}
    assert {"demo_pr", "demo_sid", "demo_ks", "demo_style", "demo_multitask", "demo_pr_full",
            "demo_pr_l2", "demo_pr_lora", "demo_pr_early"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_shipped_config_parses(path):
    config = load_train_config(path)
    assert isinstance(config, TrainConfig) and config.tasks


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_shipped_sweep_config_parses(path):
    from speechft_jax.sweep.config import load_sweep_config

    config, dirs = load_sweep_config(path)
    assert config.alphas and dirs == [path.parent.resolve()]


def test_base_chain_and_overrides():
    root = Path(__file__).parents[1] / "configs"
    lora = load_train_config(root / "demo_pr_lora.yaml", ["output_dir=/tmp/x", "optimizer.steps=7"])
    assert lora.output_dir == "/tmp/x" and lora.optimizer.steps == 7
    assert lora.finetune.lora.rank == 8 and lora.tasks[0].name == "pr"   # from the base file
    full = load_train_config(root / "demo_pr_full.yaml")
    assert full.optimizer.beta == 0.0 and not full.finetune.freeze_cnn and full.optimizer.head_lr == 1e-3


@pytest.mark.parametrize("override, message", [
    ("optimizer.beta=1.5", "optimizer.beta=1.5, expected a number in [0, 1]"),
    ("optimizer.steps=-3", "optimizer.steps=-3, expected an integer in [1, 1000000000]"),
    ("optimizer.stepz=3", "unknown key optimizer.stepz"),
    ("finetune.lora={rank: 4, targets: [q_porj]}", "finetune.lora.targets='q_porj'"),
    ("finetune.early_checkpoints=[1.5]", "finetune.early_checkpoints=1.5"),
    ("tasks=[]", "tasks=[], expected at least one task"),
    ("mesh.fsdp=0", "mesh.fsdp=0"),
    ("model.config=some.json", "exactly one of them"),
    ("optimizer.encoder_lr=abc", "optimizer.encoder_lr='abc', expected a number"),
])
def test_bad_values_name_the_key(override, message):
    path = Path(__file__).parents[1] / "configs" / "demo_pr.yaml"
    with pytest.raises(ConfigError) as info:
        load_train_config(path, [override])
    text = str(info.value)
    assert message in text and "\n" not in text and str(path) in text


def test_task_errors_name_the_task_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("output_dir: x\nmodel: {config: c.json}\n"
                    "tasks:\n  - {name: pr, kind: ctc, data: {type: corpus, task: nope}}\n")
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.data\.task='nope', expected one of pr, asr"):
        load_train_config(path)
    path.write_text("output_dir: x\nmodel: {config: c.json}\n"
                    "tasks:\n  - {name: a, kind: ctc, data: {type: hf, path: x}}\n")
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.data\.field=None, expected the name of the label column"):
        load_train_config(path)


def test_base_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_train_config(tmp_path / "a.yaml")


def test_paper_configs_carry_the_paper_hyper_parameters():
    root = Path(__file__).parents[1] / "configs" / "paper"
    for model, hub in (("hubert_base", "facebook/hubert-base-ls960"), ("wav2vec2_base", "facebook/wav2vec2-base"),
                       ("wavlm_base_plus", "microsoft/wavlm-base-plus")):
        asr = load_train_config(root / f"{model}_asr.yaml")
        assert asr.model.pretrained == hub and model in asr.output_dir
        (task,) = asr.tasks
        assert (task.kind, task.head, task.lstm_layers, task.lstm_units, task.batch_size) == ("ctc", "bilstm", 3, 256, 32)
        assert (asr.optimizer.steps, asr.optimizer.encoder_lr, asr.optimizer.clip_norm, asr.optimizer.beta) == (50000, 1e-4, 1.0, 0.1)
        assert asr.finetune.freeze_cnn and asr.finetune.spec_augment
        er = load_train_config(root / f"{model}_er.yaml")
        assert (er.optimizer.steps, er.tasks[0].batch_size, er.optimizer.grad_accum) == (30000, 4, 8)
        assert er.tasks[0].kind == "classification" and er.model.pretrained == hub
        assert load_train_config(root / f"{model}_pr.yaml").tasks[0].data.lexicon
        assert load_train_config(root / f"{model}_sid.yaml").tasks[0].kind == "classification"


def test_relative_paths_are_found_beside_the_base_files(tmp_path, monkeypatch):
    from speechft_jax.config_loading import config_dirs, resolve_path
    from speechft_jax.train.start_encoder import start_encoder

    mine = tmp_path / "mine.yaml"  # a run of one's own that starts from a shipped config elsewhere
    mine.write_text(f"base: {ROOT / 'demo.yaml'}\noutput_dir: x\n")
    monkeypatch.chdir(tmp_path)
    config = load_train_config(mine)
    assert config.model.pretrained == "../speechft_jax/assets/tiny-hubert"  # written in demo_pr.yaml
    dirs = config_dirs(mine)
    assert dirs == [tmp_path.resolve(), ROOT.resolve()]
    assert resolve_path(config.model.pretrained, dirs).resolve() == (ROOT.parent / "speechft_jax" / "assets" /
                                                                       "tiny-hubert").resolve()
    assert not resolve_path(config.model.pretrained, tmp_path).exists()  # the run's own folder alone
    assert start_encoder(config.model, dirs).config.hidden_size == 192


@pytest.mark.parametrize("override, message", [
    ("seed=100000000000000000000000", "seed=100000000000000000000000, expected an integer in [0, 4294967295]"),
    ("seed=-1", "seed=-1, expected an integer in [0, 4294967295]"),
    ("model.init_seed=4294967296", "model.init_seed=4294967296, expected an integer in [0, 4294967295]"),
    ("optimizer.steps=10000000000", "optimizer.steps=10000000000, expected an integer in [1, 1000000000]"),
    ("optimizer.encoder_lr=.inf", "optimizer.encoder_lr=inf, expected a finite number"),
    ("optimizer.clip_norm=.nan", "optimizer.clip_norm=nan, expected a finite number"),
    ("tasks=[{name: pr, kind: ctc, max_seconds: .inf, data: {task: pr}}]",
     "tasks[0].max_seconds=inf, expected a number in [0.1, 3600]"),
    ("tasks=[{name: pr, kind: ctc, batch_size: 1000000, data: {task: pr}}]",
     "tasks[0].batch_size=1000000, expected an integer in [1, 65536]"),
    ("checkpoint.every_steps=0", "checkpoint.every_steps=0, expected an integer in [1, 1000000000]"),
    ("mesh.data=0", "mesh.data=0, expected -1 or a positive integer"),
    ("finetune.early_checkpoints=[.nan]", "finetune.early_checkpoints[0]=nan, expected a finite number"),
    ("model.overrides={mask_time_length: 100000000000000000000}",
     "model.overrides.mask_time_length=100000000000000000000, expected an integer in [1, 65536]"),
    ("model.overrides={hidden_dropout: .nan}", "model.overrides.hidden_dropout=nan, expected a number in [0, 1]"),
    ("model.overrides={conv_dim: [16, 1.0e+20]}", "model.overrides.conv_dim=[16, 1e+20], expected an overridable"),
    ("sweep={seed: 1.0e+23}", "sweep.seed=1e+23, expected an integer"),
    ("sweep={probe: {steps: 100000000000}}", "sweep.probe.steps=100000000000, expected an integer in [1, 1000000000]"),
    ("sweep={probe: {learning_rates: [.inf]}}", "sweep.probe.learning_rates[0]=inf, expected a finite number"),
])
def test_numbers_are_finite_and_bounded(override, message):
    # each used to pass validation and fail later with an OverflowError traceback (or run for minutes)
    path = ROOT / "demo_pr.yaml"
    with pytest.raises(ConfigError) as info:
        load_train_config(path, [override])
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_alias_bomb_in_model_overrides_is_refused(tmp_path):
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text(f"base: {ROOT / 'demo_pr.yaml'}\nmodel:\n  overrides:\n"
                    + "".join(f"    {line}\n" for line in bomb) + "    mask_time_length: *a8\n")
    with pytest.raises(ConfigError, match=r"bomb.yaml: not valid YAML \(aliases expand to more than 100000 nodes"):
        load_train_config(path)


def test_config_errors_exit_2_with_one_line(capsys):
    from speechft_jax.train.__main__ import main

    assert main(["--config", str(ROOT / "demo_pr.yaml"), "--set", "seed=100000000000000000000000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "seed=" in err and err.count("\n") == 1
