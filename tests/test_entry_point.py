"""`python -m speechft_jax COMMAND` / `speechft COMMAND`: the list of commands and the dispatch."""

from __future__ import annotations

import importlib

import pytest

from speechft_jax.__main__ import COMMANDS, main


def test_no_command_lists_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name, (module, _) in COMMANDS.items():
        assert f"  {name} " in out
        assert callable(importlib.import_module(module).main)


def test_an_unknown_command_is_a_one_line_error(capsys):
    assert main(["fine-tune"]) == 2
    err = capsys.readouterr().err
    assert err == "error: unknown command 'fine-tune', expected one of train, sweep, evaluate, merge, convert, extract\n"


def test_a_command_gets_the_rest_of_the_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # merge's own argument check answers
        main(["merge", "--pretrained", "a", "--finetuned", "b", "--alpha", "inf", "--out", str(tmp_path / "m")])
    assert exit_info.value.code == 2
    assert "--alpha inf: expected finite numbers" in capsys.readouterr().err
