"""A frozen encoder's forward pass, as the self-supervised objectives call it inside the step."""

from __future__ import annotations

from speechft_jax.models import SpeechEncoder


def teacher_forward(module: SpeechEncoder, layer: int | None = None):
    """`(params, audio, audio_mask) -> (hidden state `layer` (None: the last), frame_mask)`, eval mode
    (no masking, no dropout)."""

    def forward(params, audio, audio_mask):
        out = module.apply({"params": params}, audio, audio_mask)
        return (out.last_hidden_state if layer is None else out.hidden_states[layer]), out.frame_mask

    return forward
