"""Features of K merged encoders in one jitted program: the alpha sweep's forward pass.

`sweep_forward(config)` compiles (once per padded batch shape) a function of
`(theta_0, theta_ft, alphas [K], audio, audio_mask)` that maps over the alphas with `lax.map`:
inside the loop it forms `interpolate(theta_0, theta_ft, alpha)` and runs the encoder, so the
merged weights never leave the device and K alphas cost K forward passes and one compilation.
`sweep_feature_sets(...)` runs it over a source and returns one `FeatureSet` per alpha.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from speechft_jax.data import AudioLoader, LoaderConfig
from speechft_jax.data.labels import SequenceLabels
from speechft_jax.evaluate.features import FeatureSet
from speechft_jax.merge import interpolate
from speechft_jax.models import EncoderConfig, SpeechEncoder


@functools.lru_cache(maxsize=8)
def sweep_forward(config: EncoderConfig):
    """The jitted `(theta_0, theta_ft, alphas, audio, audio_mask) -> (states [K, L+1, B, T, D], frame_mask)`."""
    module = SpeechEncoder(config)

    def one(theta_0, theta_ft, alpha, audio, audio_mask):
        out = module.apply({"params": interpolate(theta_0, theta_ft, alpha)}, audio, audio_mask)
        return jnp.stack(out.hidden_states), out.frame_mask

    def forward(theta_0, theta_ft, alphas, audio, audio_mask):
        states, masks = jax.lax.map(lambda a: one(theta_0, theta_ft, a, audio, audio_mask), alphas)
        return states, masks[0]

    return jax.jit(forward)


def sweep_feature_sets(bundle, theta_ft, alphas, source, label_spec, *, batch_size: int = 8,
                       desc: str = "sweep features") -> list[FeatureSet]:
    """One `FeatureSet` per alpha over `source` (theta_0 = `bundle.params`)."""
    alphas = jnp.asarray(alphas, jnp.float32)
    forward = sweep_forward(bundle.config)
    loader = AudioLoader(source, [label_spec], LoaderConfig(
        batch_size=batch_size, num_buckets=4, train=False, repeat=False,
        normalize=bool(bundle.preprocessor.get("do_normalize"))), process_index=0, process_count=1)
    k = int(alphas.shape[0])
    features = [[None] * len(source) for _ in range(k)]
    labels: list = [None] * len(source)
    sequence = isinstance(label_spec, SequenceLabels)
    try:
        for batch in tqdm(loader, total=loader.num_batches(), desc=desc, unit="batch", leave=False):
            states, frame_mask = jax.device_get(forward(bundle.params, theta_ft, alphas, batch["audio"],
                                                        batch["audio_mask"]))
            for row in np.flatnonzero(batch["example_mask"]):
                index, frames = int(batch["example_index"][row]), int(frame_mask[row].sum())
                for a in range(k):
                    features[a][index] = states[a, :, row, :frames].astype(np.float16)
                labels[index] = (batch[label_spec.key][row, :batch[label_spec.lengths_key][row]].copy()
                                 if sequence else int(batch[label_spec.key][row]))
    finally:
        loader.close()
    keep = [i for i, f in enumerate(features[0]) if f is not None]
    return [FeatureSet([f[i] for i in keep], [labels[i] for i in keep]) for f in features]
