"""Training objectives, one module each: `hubert` (masked prediction on k-means or a teacher's
codewords), `score` (SCORE's correspondence fine-tuning) and `supervised` (labelled tasks only).

An objective is what the run's `objective:` names; the trainer calls only this API of it:
  encoder_settings(model, spec_augment) -> (model, spec_augment)   the encoder the run builds
  loader_view()                          -> ViewConfig | None       a second view of every row
  layers_to_train(num_layers)            -> tuple[int, ...] | None  None: every layer
  prepare(task_config, bundle, theta_0, source, *, out_dir, seed, is_writer, config_dir)
      -> (task, frozen arrays): the task of the objective's kind (`hubert`, `score`), complete
      and immutable, and the arrays its loss reads (a teacher, k-means centroids)
`hubert.HubertConfig` and `score.ScoreConfig` are both a config section and the objective;
`supervised.SUPERVISED` stands for a run without a self-supervised task (it has no `prepare`).
"""
