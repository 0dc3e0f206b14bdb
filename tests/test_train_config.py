"""The training config schema: shipped configs parse; bad values are one-line errors naming the key."""

from pathlib import Path

import pytest

from speechft_jax.models.config import ConfigError
from speechft_jax.train.config import TrainConfig, load_train_config

ROOT = Path(__file__).parents[1] / "configs"
SWEEPS = sorted((ROOT / "sweep").glob("*.yaml"))  # alpha-sweep configs, a schema of their own
CONFIGS = sorted(p for p in ROOT.rglob("*.yaml") if p not in SWEEPS)


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

    assert load_sweep_config(path).alphas


def test_base_chain_and_overrides():
    root = Path(__file__).parents[1] / "configs"
    lora = load_train_config(root / "demo_pr_lora.yaml", ["output_dir=/tmp/x", "optimizer.steps=7"])
    assert lora.output_dir == "/tmp/x" and lora.optimizer.steps == 7
    assert lora.finetune.lora.rank == 8 and lora.tasks[0].name == "pr"   # from the base file
    full = load_train_config(root / "demo_pr_full.yaml")
    assert full.optimizer.beta == 0.0 and not full.finetune.freeze_cnn and full.optimizer.head_lr == 1e-3


@pytest.mark.parametrize("override, message", [
    ("optimizer.beta=1.5", "optimizer.beta=1.5, expected a number in [0, 1]"),
    ("optimizer.steps=-3", "optimizer.steps=-3, expected a positive integer"),
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
    from speechft_jax.config_loading import config_dirs
    from speechft_jax.train.start_encoder import resolve_path, start_encoder

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
