"""Typed YAML configs: strict parsing, one-line errors naming the key, --set overrides."""

import dataclasses
from typing import Literal, Optional

import pytest
import yaml

from speechft_jax.config_loading import apply_overrides, load_config, to_dict
from speechft_jax.models.config import ConfigError


@dataclasses.dataclass(frozen=True)
class Optim:
    lr: float = 1e-4
    beta: float = 0.1
    steps: int = 100

    def validate(self):
        if not 0.0 <= self.beta <= 1.0:
            raise ConfigError(f"beta={self.beta}, expected a number in [0, 1]")
        if self.steps < 1:
            raise ConfigError(f"steps={self.steps}, expected a positive integer")


@dataclasses.dataclass(frozen=True)
class Run:
    output_dir: str
    task: Literal["pr", "sid"] = "pr"
    alphas: tuple[float, ...] = (0.0, 0.25)
    seed: Optional[int] = None
    remat: bool = False
    optimizer: Optim = Optim()


def write(tmp_path, data):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_loads_nested_typed_config_and_round_trips(tmp_path):
    path = write(tmp_path, {"output_dir": "/tmp/a", "alphas": [0, 0.5, 1], "optimizer": {"lr": 3e-4}})
    config = load_config(Run, path)
    assert config == Run("/tmp/a", alphas=(0.0, 0.5, 1.0), optimizer=Optim(lr=3e-4))
    assert load_config(Run, write(tmp_path, to_dict(config))) == config


def test_overrides_set_nested_keys_with_yaml_values(tmp_path):
    path = write(tmp_path, {"output_dir": "/tmp/a"})
    config = load_config(Run, path, ["output_dir=/tmp/run1", "optimizer.steps=7", "seed=3", "alphas=[1]", "remat=true"])
    assert (config.output_dir, config.optimizer.steps, config.seed, config.alphas, config.remat) == ("/tmp/run1", 7, 3, (1.0,), True)
    assert apply_overrides({"a": {"b": 1}}, ["a.c=2"]) == {"a": {"b": 1, "c": 2}}


def test_exponent_without_a_dot_is_a_number(tmp_path):
    # YAML 1.1 reads 5e-4 as the string "5e-4"; a float field takes it as the number.
    path = tmp_path / "run.yaml"
    path.write_text("output_dir: x\noptimizer: {lr: 5e-4}\nalphas: [1e-1, 1]\n")
    config = load_config(Run, path, ["optimizer.beta=2e-1"])
    assert (config.optimizer.lr, config.optimizer.beta, config.alphas) == (5e-4, 0.2, (0.1, 1.0))


@pytest.mark.parametrize("data,overrides,message", [
    ({"output_dir": "x", "optimzer": {}}, [], r"unknown key optimzer \(known: alphas, optimizer"),
    ({"output_dir": "x", "optimizer": {"lrr": 1}}, [], "unknown key optimizer.lrr"),
    ({}, [], "missing required key output_dir"),
    ({"output_dir": "x", "optimizer": {"steps": "ten"}}, [], r"optimizer.steps='ten', expected an integer"),
    ({"output_dir": "x", "optimizer": {"steps": 2.5}}, [], "optimizer.steps=2.5, expected an integer"),
    ({"output_dir": "x", "remat": "yes"}, [], "remat='yes', expected true or false"),
    ({"output_dir": "x", "task": "asr"}, [], r"task='asr', expected one of 'pr', 'sid'"),
    ({"output_dir": "x", "alphas": 0.5}, [], "alphas=0.5, expected a list"),
    ({"output_dir": "x"}, ["optimizer.beta=1.5"], r"optimizer.beta=1.5, expected a number in \[0, 1\]"),
    ({"output_dir": "x"}, ["optimizer.steps=-3"], "optimizer.steps=-3, expected a positive integer"),
    ({"output_dir": "x"}, ["seed"], "expected key=value"),
])
def test_errors_are_one_line_and_name_file_and_key(tmp_path, data, overrides, message):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(Run, path, overrides)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(str(path)) or str(caught.value).startswith("--set")


def test_unreadable_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(Run, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(Run, bad)
