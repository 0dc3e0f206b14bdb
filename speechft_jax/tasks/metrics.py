"""Error rates of transcripts (WER / PER on whitespace-separated tokens, CER on characters)."""

from __future__ import annotations

import jiwer

UNITS = ("word", "char")


def error_rate(references: list[str], hypotheses: list[str], unit: str = "word") -> float:
    """Corpus-level edit distance / reference length, via jiwer.

    unit "word": tokens are split on whitespace (WER for words, PER when tokens are phones);
    unit "char": CER. Empty hypotheses count as all deletions.
    """
    if unit not in UNITS:
        raise ValueError(f"error_rate unit={unit!r}, expected one of {UNITS}")
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(f"error_rate got {len(references)} references and {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("error_rate got no references")
    # jiwer's default transform splits on spaces only; normalise tabs and runs of whitespace here
    references = [" ".join(r.split()) for r in references]
    hypotheses = [" ".join(h.split()) for h in hypotheses]
    measure = jiwer.wer if unit == "word" else jiwer.cer
    return float(measure(references, hypotheses))
