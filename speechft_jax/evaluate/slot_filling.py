"""Slot filling's two metrics (SUPERB's SF on SNIPS audio): slot-type F1 and slot-value CER.

A decoded sequence is a list of tokens: characters (the word separator `|` or " " as a space),
and slot markers `B-<type>` / `E-<type>` around a slot's value, as SUPERB's `character-slot`
targets write them (`B-city G I B S L A N D E-city`). `parse_slots(tokens)` gives the
`(type, value)` pairs: a slot opens at `B-<type>` and closes at the next `E-<type>`; the value is
the characters between, spaces collapsed; a slot never closed, or an `E-` without its `B-`, is
not a slot. Over a corpus of (reference, hypothesis) sequences:
  slot_type_f1   per utterance, the F1 between the sets of slot types of the reference and of the
                 hypothesis (1 when both have none), averaged over the utterances;
  slot_value_cer for every reference slot with a value, the hypothesis slot of the same type
                 whose value is nearest (the lowest CER; none: the empty string), then the
                 character error rate of all those pairs together (jiwer, corpus level).
Both are fractions.
"""

from __future__ import annotations

from typing import Sequence

import jiwer

WORD_SEPARATORS = ("|", " ")


def parse_slots(tokens: Sequence[str]) -> list[tuple[str, str]]:
    """The `(type, value)` slots of a decoded token sequence (module docstring)."""
    slots, open_type, chars = [], None, []
    for token in tokens:
        if token.startswith("B-"):
            open_type, chars = token[2:], []
        elif token.startswith("E-"):
            if open_type is not None and token[2:] == open_type:
                slots.append((open_type, " ".join("".join(chars).split())))
            open_type, chars = None, []
        elif open_type is not None:
            chars.append(" " if token in WORD_SEPARATORS else token)
    return slots


def slot_type_f1(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]) -> float:
    """The mean over utterances of the F1 of their slot-type sets (module docstring)."""
    _check(references, hypotheses)
    scores = []
    for reference, hypothesis in zip(references, hypotheses):
        wanted = {slot_type for slot_type, _ in parse_slots(reference)}
        found = {slot_type for slot_type, _ in parse_slots(hypothesis)}
        if not wanted and not found:
            scores.append(1.0)
            continue
        both = len(wanted & found)
        scores.append(2.0 * both / (len(wanted) + len(found)))
    return float(sum(scores) / len(scores))


def slot_value_cer(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]) -> float:
    """The corpus CER of each reference slot's value against the nearest same-type hypothesis value."""
    _check(references, hypotheses)
    wanted_values, found_values = [], []
    for reference, hypothesis in zip(references, hypotheses):
        found = parse_slots(hypothesis)
        for slot_type, value in parse_slots(reference):
            if not value:  # a slot with no characters has nothing to score
                continue
            candidates = [v for t, v in found if t == slot_type]
            wanted_values.append(value)
            found_values.append(min(candidates, key=lambda v: jiwer.cer(value, v)) if candidates else "")
    if not wanted_values:
        raise ValueError("slot_value_cer: the references hold no slot")
    return float(jiwer.cer(wanted_values, found_values))


def _check(references, hypotheses) -> None:
    if len(references) != len(hypotheses) or not references:
        raise ValueError(f"expected as many hypotheses as references (at least one), got {len(references)} "
                         f"references and {len(hypotheses)} hypotheses")
