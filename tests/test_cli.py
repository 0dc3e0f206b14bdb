"""The wrapper every command runs in (`speechft_jax.cli.run_command`): a user error is one line and
exit code 2, a bug keeps its traceback, the log goes to the console and the run folder, and
`--quiet` drops the progress bars."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf
import yaml

import speechft_jax as sj
from conftest import tiny_encoder_config, write_train_config
from speechft_jax.cli import log_to_file, progress_bars_shown, run_command
from speechft_jax.errors import (CheckpointError, ConfigError, DataError, MergeError, SpeechFTError,
                                 TrainingDiverged)
from speechft_jax.train.run_lock import RunDirectoryInUse

log = logging.getLogger("speechft_jax.test_cli")


def _raise(err):
    def body():
        raise err
    return body


@pytest.mark.parametrize("err,message", [
    (SpeechFTError("a user error"), "a user error"),
    (ConfigError("optimizer.beta=1.5, expected a number in [0, 1]"), "optimizer.beta=1.5, expected a number in [0, 1]"),
    (DataError("a.wav", "not audio"), "a.wav: not audio"),
    (CheckpointError("model.safetensors: truncated"), "model.safetensors: truncated"),
    (MergeError("encoder/x: shape (2,)"), "encoder/x: shape (2,)"),
    (TrainingDiverged("step 3: the loss is nan"), "step 3: the loss is nan"),
    (RunDirectoryInUse("output_dir=x: another run is using it"), "output_dir=x: another run is using it"),
    (FileNotFoundError(2, "No such file or directory", "nope.yaml"), "[Errno 2] No such file or directory: 'nope.yaml'"),
])
def test_a_user_error_is_one_line_and_exit_code_2(err, message, capsys):
    assert run_command(_raise(err)) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {message}\n" and captured.out == ""


def test_the_errors_keep_their_builtin_bases():
    for error in (ConfigError, DataError, CheckpointError, MergeError):
        assert issubclass(error, SpeechFTError) and issubclass(error, ValueError)
    assert issubclass(TrainingDiverged, RuntimeError) and issubclass(RunDirectoryInUse, ConfigError)


def test_a_bug_keeps_its_traceback_and_the_logging_is_put_back():
    package = logging.getLogger("speechft_jax")
    before = (list(package.handlers), package.level, package.propagate)
    with pytest.raises(ZeroDivisionError):
        run_command(lambda: 1 / 0)
    with pytest.raises(KeyError):  # a ValueError's cousin that no command catches
        run_command(_raise(KeyError("x")))
    assert (list(package.handlers), package.level, package.propagate) == before
    assert run_command(lambda: None) == 0 and run_command(lambda: 3) == 3


def test_notes_go_to_stdout_and_warnings_to_stderr_as_plain_lines(capsys):
    def body():
        log.info("a note")
        log.debug("a detail")
        log.warning("a warning")
        print("the result")

    assert run_command(body) == 0
    captured = capsys.readouterr()
    assert captured.out == "a note\nthe result\n" and captured.err == "a warning\n"


def test_the_log_file_waits_for_its_folder_and_records_how_the_command_ended(tmp_path):
    run = tmp_path / "run"

    def body():
        log_to_file(run / "x.log")
        log.info("before the folder")
        run.mkdir()
        log.warning("a warning")
        raise ConfigError("a bad value")

    assert run_command(body) == 2
    lines = (run / "x.log").read_text().splitlines()
    assert [line.split(" ", 3)[3] for line in lines] == [
        "INFO speechft_jax.cli: started", "INFO speechft_jax.test_cli: before the folder",
        "WARNING speechft_jax.test_cli: a warning", "ERROR speechft_jax.cli: error: a bad value"]

    def bug():
        log_to_file(run / "x.log")
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        run_command(bug)
    text = (run / "x.log").read_text()
    assert "stopped by a bug:\nTraceback" in text and text.endswith("ZeroDivisionError: a bug\n")

    def no_folder():
        log_to_file(tmp_path / "never" / "x.log")
        log.info("a note")
        raise ConfigError("stopped before making the folder")

    assert run_command(no_folder) == 2
    assert not (tmp_path / "never").exists()  # the log makes no folder, and leaves nothing behind
    log_to_file(tmp_path / "outside.log")  # outside a command: nothing
    log.warning("not in any file")
    assert not (tmp_path / "outside.log").exists()


def test_train_keeps_its_log_in_the_run_folder(demo_corpus_tiny, tmp_path, capsys):
    from speechft_jax.train.__main__ import main as train_main

    # a config that fails inside the run folder (after the run made it): its log says why
    config = write_train_config(tmp_path / "c.yaml", demo_corpus_tiny, tmp_path / "run", mesh={"fsdp": 3})
    assert train_main(["--config", str(config)]) == 2
    assert "mesh.fsdp=3" in capsys.readouterr().err
    text = (tmp_path / "run" / "train.log").read_text()
    assert "INFO speechft_jax.cli: started" in text and "ERROR speechft_jax.cli: error: " in text
    assert "mesh.fsdp=3" in text


def test_sweep_keeps_its_log_in_the_output_dir(demo_corpus_tiny, tmp_path, monkeypatch, capsys):
    import speechft_jax.sweep.runner as runner
    from speechft_jax.sweep.__main__ import main as sweep_main

    def bad_audio(*args, **kwargs):  # the first probes: the sweep has made its output_dir by now
        raise DataError("x.wav", "not audio")

    monkeypatch.setattr(runner, "train_probes", bad_audio)
    sj.save_pretrained(sj.init_encoder(tiny_encoder_config(), seed=0), tmp_path / "base")
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({
        "pretrained": str(tmp_path / "base"), "finetuned": str(tmp_path / "base"), "output_dir": str(tmp_path / "out"),
        "alphas": [0.0], "tasks": ["sid"], "corpus_dir": str(demo_corpus_tiny), "similarity": False,
        "probe": {"steps": 2, "learning_rates": [1e-2], "batch_size": 8}}))
    assert sweep_main(["--config", str(path)]) == 2
    assert capsys.readouterr().err == "error: x.wav: not audio\n"
    text = (tmp_path / "out" / "sweep.log").read_text()
    assert "INFO speechft_jax.cli: started" in text and "ERROR speechft_jax.cli: error: x.wav: not audio" in text


def test_quiet_drops_the_progress_bars(tmp_path, capsys):
    from speechft_jax.extract import main as extract_main

    sj.save_pretrained(sj.init_encoder(tiny_encoder_config(), seed=0), tmp_path / "encoder")
    (tmp_path / "audio").mkdir()
    for i in range(2):
        sf.write(tmp_path / "audio" / f"{i}.wav", np.zeros(16000, np.float32), 16000)
    argv = ["--encoder", str(tmp_path / "encoder"), "--folder", str(tmp_path / "audio")]
    assert extract_main([*argv, "--out", str(tmp_path / "loud")]) == 0
    assert "features" in capsys.readouterr().err  # the bar's label
    assert extract_main([*argv, "--out", str(tmp_path / "quiet"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "2 utterance(s)" in captured.out
    assert run_command(lambda: None if progress_bars_shown() else 1) == 0
    assert run_command(lambda: 1 if progress_bars_shown() else None, quiet=True) == 0
