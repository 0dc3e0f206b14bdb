"""Typed YAML configs: strict parsing, one-line errors naming the key, --set overrides."""

import dataclasses
from typing import Annotated, Literal, Optional

import pytest
import yaml

from speechft_jax.config_loading import (FRACTION, SEED, STEPS, Range, apply_overrides, check_fields, load_config,
                                         to_dict)
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


def _alias_bomb(levels: int = 9) -> list[str]:
    """A billion-laughs document's lines: each level's list holds nine aliases of the one before."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return lines


def test_alias_bomb_is_refused_quickly(tmp_path):
    # 600 bytes that expand to 387 million nodes: before, the error message alone took minutes and GBs
    path = tmp_path / "bomb.yaml"
    path.write_text("output_dir: x\nbombs:\n" + "".join(f"  {line}\n" for line in _alias_bomb())
                    + "alphas: *a8\n")
    with pytest.raises(ConfigError, match=r"bomb.yaml: not valid YAML \(aliases expand to more than 100000 nodes"):
        load_config(Run, path)
    flow = "{" + ", ".join(_alias_bomb()) + "}"  # the same as a --set value
    with pytest.raises(ConfigError, match=r"^--set 'alphas=.*aliases expand to more than") as caught:
        load_config(Run, write(tmp_path, {"output_dir": "x"}), [f"alphas={flow}"])
    assert "\n" not in str(caught.value)


def test_a_few_aliases_still_load(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text("output_dir: x\noptimizer: &opt {lr: 3.0e-4, steps: 7}\n")
    (tmp_path / "run.yaml").write_text("base: base.yaml\nalphas: &a [0.0, 0.5]\n"
                                       "optimizer: {<<: {steps: 9}, beta: 0.5}\n")
    config = load_config(Run, tmp_path / "run.yaml", ["alphas=[&x 1, *x]"])
    assert config.alphas == (1.0, 1.0) and config.optimizer == Optim(lr=3e-4, beta=0.5, steps=9)


@pytest.mark.parametrize("text,message", [
    ("output_dir: x\nalphas: &a [0.5, *a]\n", "alias \\*a refers to itself"),
    ("output_dir: x\nalphas: " + "[" * 200 + "]" * 200 + "\n", "nested deeper than 64 levels"),
    ("output_dir: x\noptimizer: {steps: " + "9" * 5000 + "}\n", "Exceeds the limit"),
])
def test_recursive_deep_or_huge_yaml_is_a_config_error(tmp_path, text, message):
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"odd.yaml: not valid YAML .*{message}") as caught:
        load_config(Run, path)
    assert "\n" not in str(caught.value)


@dataclasses.dataclass(frozen=True)
class Bounded:
    seed: Annotated[int, SEED] = 0
    steps: Annotated[int, STEPS] = 10
    rate: Annotated[float, FRACTION] = 0.5
    scale: float = 1.0
    count: int = 1
    limit: Optional[Annotated[float, Range(0.1, 60)]] = None
    weights: tuple[float, ...] = ()


@pytest.mark.parametrize("yaml_text,message", [
    ("scale: .inf", "scale=inf, expected a finite number"),
    ("scale: .nan", "scale=nan, expected a finite number"),
    ("scale: 1e999", "scale='1e999', expected a finite number"),
    ("weights: [1.0, -.inf]", r"weights\[1\]=-inf, expected a finite number"),
    ("limit: .inf", r"limit=inf, expected a number in \[0.1, 60\]"),
    ("rate: .nan", r"rate=nan, expected a number in \[0, 1\]"),
    ("seed: 100000000000000000000000", r"seed=100000000000000000000000, expected an integer in \[0, 4294967295\]"),
    ("seed: -1", r"seed=-1, expected an integer in \[0, 4294967295\]"),
    ("seed: 1e23", "seed='1e23', expected an integer"),
    ("steps: 0", r"steps=0, expected an integer in \[1, 1000000000\]"),
    ("count: 100000000000000000000000", "count=100000000000000000000000, expected an integer in"),
    ("count: " + "9" * 300, "count=<a 997-bit integer>, expected an integer in"),
])
def test_numbers_must_be_finite_and_in_range(tmp_path, yaml_text, message):
    path = tmp_path / "bounded.yaml"
    path.write_text(yaml_text + "\n")
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(Bounded, path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


def test_ranges_accept_their_bounds_and_check_fields_checks_python_made_configs(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("seed: 4294967295\nsteps: 1000000000\nrate: 1\nlimit: 60\nweights: [1e-3, 2]\n")
    assert load_config(Bounded, path) == Bounded(seed=2**32 - 1, steps=10**9, rate=1.0, limit=60.0, weights=(1e-3, 2.0))
    check_fields(Bounded(seed=7))
    with pytest.raises(ConfigError, match=r"^steps=0, expected an integer in \[1, 1000000000\]$"):
        check_fields(Bounded(steps=0))
    with pytest.raises(ConfigError, match=r"^weights\[0\]=nan, expected a finite number$"):
        check_fields(Bounded(weights=(float("nan"),)))


def test_more_than_100_small_aliases_are_refused(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text("output_dir: &o x\nextra: [" + ", ".join(["*o"] * 101) + "]\n")
    with pytest.raises(ConfigError, match=r"many.yaml: not valid YAML \(more than 100 aliases \(line 2\)"):
        load_config(Run, path)


def test_overrides_reach_list_items(tmp_path):
    data = {"tasks": [{"name": "a", "data": {"path": "x"}}, {"name": "b"}],
            "sweep": {"tasks": [{"probe": {}}, {"probe": {}}]}}
    out = apply_overrides(data, ["tasks.0.data.path=y", "tasks.1.lstm_units=64", "sweep.tasks.1.probe.steps=5",
                                 "tasks.0.name=c"])
    assert out["tasks"] == [{"name": "c", "data": {"path": "y"}}, {"name": "b", "lstm_units": 64}]
    assert out["sweep"]["tasks"] == [{"probe": {}}, {"probe": {"steps": 5}}]
    assert data["tasks"][0] == {"name": "a", "data": {"path": "x"}}  # the input is left as it was
    assert apply_overrides({"a": [1, 2]}, ["a.1=7"]) == {"a": [1, 7]}


@pytest.mark.parametrize("override, message", [
    ("tasks.3.name=x", "--set 'tasks.3.name=x': tasks has 2 items"),
    ("tasks.name=x", "--set 'tasks.name=x': tasks is a list; name an item by its number, not 'name'"),
    ("tasks.-1.name=x", "--set 'tasks.-1.name=x': tasks is a list; name an item by its number, not '-1'"),
    ("model.0=x", "--set 'model.0=x': model is a mapping, not a list"),
    ("sweep.tasks.1.steps=5", "--set 'sweep.tasks.1.steps=5': sweep.tasks is not in the config (no list to index)"),
    ("tasks.0.name.x=1", "--set 'tasks.0.name.x=1': tasks.0.name is not a mapping or a list"),
])
def test_override_errors_on_lists_name_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        apply_overrides({"tasks": [{"name": "a"}, {"name": "b"}], "model": {"x": 1}}, [override])
    assert str(err.value) == message


def test_relative_paths_are_looked_up_beside_the_config_first_then_the_working_directory(tmp_path, monkeypatch):
    from speechft_jax.config_loading import require_path, resolve_path

    configs, cwd = tmp_path / "configs", tmp_path / "cwd"
    configs.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    (configs / "both.txt").write_text("beside")
    (cwd / "both.txt").write_text("cwd")
    (cwd / "here.txt").write_text("cwd")
    assert resolve_path("both.txt", [configs]).read_text() == "beside"
    assert resolve_path("here.txt", [configs]).read_text() == "cwd"
    assert resolve_path("org/model", [configs]) == type(configs)("org/model")  # a hub id stays as written
    assert require_path("here.txt", None, "k").read_text() == "cwd"
    with pytest.raises(ConfigError) as err:
        require_path("train.jsonl", [configs], "data.path")
    assert str(err.value) == (f"data.path=train.jsonl: not found beside the config ({configs / 'train.jsonl'}) "
                              f"nor in the working directory ({cwd / 'train.jsonl'})")
    with pytest.raises(ConfigError, match=r"^k=/nowhere/x: not found$"):
        require_path("/nowhere/x", [configs], "k")
