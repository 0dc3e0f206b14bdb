"""SUPERB's datasets as a user downloads them: readers of their official on-disk layouts.

`open_dataset(config)` reads the split `config.split` (train, dev or test, SUPERB's split of the
dataset) of the dataset `config.type` under `config.root` and returns `(source, label spec)`:
a `FileSource` whose examples carry the label fields, and the label spec SUPERB fixes for the task
(its class list, vocabulary, trial list or speaker-activity frames), or None where the task's own
label settings decide. One module per dataset; a missing file of the layout is a one-line
`DataError` naming it.
"""

from __future__ import annotations

import importlib

from speechft_jax.errors import ConfigError

# data type -> the module (in this package) whose `open_split(config)` reads it
READERS = {"librispeech": "librispeech", "speech_commands": "speech_commands", "voxceleb1": "voxceleb1",
           "iemocap": "iemocap", "fluent_commands": "fluent_commands", "voxceleb1_sv": "voxceleb1_sv",
           "librimix": "librimix", "snips": "snips"}


def open_dataset(config):
    """`(FileSource, label spec or None)` of the split `config.split` of the dataset `config.type`."""
    if config.type not in READERS:
        raise ConfigError(f"data.type={config.type!r} is not an utterance dataset "
                          "(quesst14 is read by a qbe task only)")
    if not config.root:
        raise ConfigError(f"data.root is not set: expected the folder of the downloaded {config.type} dataset")
    module = importlib.import_module(f"{__name__}.{READERS[config.type]}")
    return module.open_split(config)
