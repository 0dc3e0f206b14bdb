"""Task heads and losses for fine-tuning: CTC (linear or BiLSTM head) and utterance classification.

A task object (`CTCTask`, `ClassificationTask`) owns its head and loss:
  task.init(rng, hidden_dim)                                          -> head params
  task.loss(head_params, features, frame_mask, batch, rng, train)     -> (loss, metrics)
  task.predict(head_params, features, frame_mask)                     -> logits
`soft_dtw` holds the batched, masked soft-DTW that SCORE's correspondence loss is built on.
"""

from speechft_jax.tasks.classification import UtteranceClassifier
from speechft_jax.tasks.ctc import CTC_HEAD_KINDS, CTCHead, ctc_greedy_decode, ctc_loss, ctc_mean_loss
from speechft_jax.tasks.metrics import error_rate
from speechft_jax.tasks.soft_dtw import cost_matrix, normalized_soft_dtw, soft_dtw
from speechft_jax.tasks.task import ClassificationTask, CTCTask

__all__ = ["CTC_HEAD_KINDS", "CTCHead", "CTCTask", "ClassificationTask", "UtteranceClassifier",
           "cost_matrix", "ctc_greedy_decode", "ctc_loss", "ctc_mean_loss", "error_rate", "normalized_soft_dtw",
           "soft_dtw"]
