"""Slot filling's metrics against values computed by hand: slot parsing, slot-type F1, slot-value CER."""

from __future__ import annotations

import pytest

from speechft_jax.evaluate.slot_filling import parse_slots, slot_type_f1, slot_value_cer


def tokens(text: str) -> list[str]:
    """`"tell me B-city GIBSLAND E-city"` as tokens: slot markers whole, characters one by one."""
    out = []
    for word in text.split():
        out += [word] if word.startswith(("B-", "E-")) else list(word)
        out.append("|")
    return out


def test_slots_are_parsed_from_markers_around_characters():
    assert parse_slots(tokens("weather in B-city NEW YORK E-city B-timeRange TODAY E-timeRange")) == [
        ("city", "NEW YORK"), ("timeRange", "TODAY")]
    # never closed, closed by another type, or closed without an opening: not slots
    assert parse_slots(tokens("B-city PARIS")) == []
    assert parse_slots(tokens("B-city PARIS E-state B-state OHIO E-state E-city")) == [("state", "OHIO")]


def test_slot_type_f1_by_hand():
    references = [tokens("B-city PARIS E-city B-timeRange NOW E-timeRange"), tokens("play music"),
                  tokens("B-artist ABBA E-artist")]
    hypotheses = [tokens("B-city PARIS E-city B-state TEXAS E-state"), tokens("play music"),
                  tokens("play abba")]
    # utterance 1: {city, timeRange} vs {city, state}: F1 = 2 * 1 / (2 + 2) = 0.5; utterance 2: none in
    # either, 1; utterance 3: {artist} vs {}: 0. Mean: 0.5
    assert slot_type_f1(references, hypotheses) == pytest.approx(0.5)
    assert slot_type_f1(references, references) == 1.0


def test_slot_value_cer_by_hand():
    references = [tokens("B-city PARIS E-city B-timeRange NOW E-timeRange"), tokens("B-artist ABBA E-artist")]
    hypotheses = [tokens("B-city PARIS E-city B-city PARI E-city B-timeRange NOK E-timeRange"), tokens("play abba")]
    # PARIS -> PARIS (the nearer of PARIS and PARI): 0 errors of 5; NOW -> NOK: 1 of 3; ABBA -> "": 4 of 4.
    # Corpus CER: (0 + 1 + 4) / (5 + 3 + 4) = 5 / 12
    assert slot_value_cer(references, hypotheses) == pytest.approx(5 / 12)
    assert slot_value_cer(references, references) == 0.0


def test_mismatched_or_empty_inputs_are_errors():
    with pytest.raises(ValueError, match="as many hypotheses as references"):
        slot_type_f1([tokens("a")], [])
    with pytest.raises(ValueError, match="no slot"):
        slot_value_cer([tokens("play music")], [tokens("play music")])
