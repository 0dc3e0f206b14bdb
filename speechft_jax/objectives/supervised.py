"""`objective: supervised`: labelled tasks only, so the objective changes nothing in the run.

Its tasks (CTC, classification) are built from their labels (train/task_data.py), so it has no
`prepare`.
"""

from __future__ import annotations


class SupervisedObjective:
    """The objective API (objectives/__init__.py) of a run without a self-supervised task."""

    def encoder_settings(self, model, spec_augment: bool):
        """`(model config, spec_augment)` as configured."""
        return model, spec_augment

    def loader_view(self):
        return None

    def layers_to_train(self, num_layers: int):
        return None  # every layer (the CNN as `finetune.freeze_cnn` says)


SUPERVISED = SupervisedObjective()
