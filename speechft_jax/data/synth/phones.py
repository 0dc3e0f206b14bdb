"""Phone labels from eSpeak NG's IPA: English folded onto ARPAbet-39, Spanish and Mandarin as IPA.

eSpeak writes one word's phones as `k_ˈɪ_tʃ_ə_n`; stress marks are dropped. English phones of all
eight accents we use map onto the 39 ARPAbet phones of the CMU dictionary (flaps and glottal stops
fold into T, non-rhotic centring diphthongs into vowel + AH). Spanish and Mandarin keep eSpeak's
IPA tokens (Mandarin finals carry their tone digit).
"""

from __future__ import annotations

ARPABET_39 = ("AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F",
              "G", "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S",
              "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH")

_IPA_TO_ARPABET = {
    # vowels and diphthongs
    "a": "AE", "æ": "AE", "a:": "AA", "aa": "AA", "aː": "AA", "ɑ": "AA", "ɑː": "AA", "ɒ": "AA",
    "ɑə": "AA", "aɪ": "AY", "aɪə": "AY AH", "aɪɚ": "AY ER", "aʊ": "AW", "æʊ": "AW",
    "aʊɚ": "AW ER", "e": "EY", "eː": "EY", "ei": "EY", "eɪ": "EY", "eə": "EH", "ɛə": "EH", "eʲ": "IY",
    "ɛ": "EH", "ɜː": "ER", "ɜ": "ER", "ɚ": "ER", "əɹ": "ER", "əɪ": "ER", "ɜːɹ": "ER",
    "ə": "AH", "ɐ": "AH", "ʌ": "AH", "əl": "AH L", "əʊ": "OW", "əu": "OW", "ʌʊ": "OW",
    "ʌʉ": "OW", "oʊ": "OW", "o": "OW", "oː": "OW", "oə": "AO", "ɔə": "AO", "i": "IY",
    "iː": "IY", "iə": "IY AH", "ɪ": "IH", "ᵻ": "IH", "ɪə": "IH AH", "ɔ": "AO", "ɔː": "AO",
    "ɔɪ": "OY", "u": "UW", "uː": "UW", "ʉ": "UW", "ʉː": "UW", "ʊ": "UH", "ʊə": "UH AH",
    # r-coloured sequences
    "ɑːɹ": "AA R", "ɔːɹ": "AO R", "oːɹ": "AO R", "ɛɹ": "EH R", "ɪɹ": "IH R", "ʊɹ": "UH R",
    "ʉɹ": "UW R", "ʌɹ": "AH R",
    # consonants
    "b": "B", "d": "D", "dʒ": "JH", "f": "F", "h": "HH", "j": "Y", "k": "K", "l": "L",
    "m": "M", "n": "N", "p": "P", "s": "S", "t": "T", "t̪": "T", "tʃ": "CH", "v": "V", "w": "W",
    "z": "Z", "ð": "DH", "ŋ": "NG", "ɡ": "G", "ɹ": "R", "r": "R", "ɾ": "T", "ʔ": "T", "ʃ": "SH",
    "ʒ": "ZH", "θ": "TH", "x": "K", "ʍ": "W", "n̩": "AH N", "l̩": "AH L", "ɬ": "L", "ɫ": "L",
}

_STRESS = str.maketrans("", "", "ˈˌ")


def strip_stress(phone: str) -> str:
    return phone.translate(_STRESS)


def english_to_arpabet(words: list[list[str]], where: str = "") -> list[str]:
    """ARPAbet-39 phones of eSpeak's English IPA (per word), flattened.

    Raises `ValueError` naming the phone if eSpeak produced one the table does not cover.
    """
    out = []
    for word in words:
        for phone in word:
            ipa = strip_stress(phone)
            if not ipa:
                continue
            mapped = _IPA_TO_ARPABET.get(ipa) or _IPA_TO_ARPABET.get(ipa.replace("ː", ""))
            if mapped is None:
                raise ValueError(f"no ARPAbet mapping for eSpeak phone {ipa!r} {where}".strip())
            out.extend(mapped.split())
    return out


def ipa_phones(words: list[list[str]]) -> list[str]:
    """eSpeak's IPA phones (per word) without stress marks, flattened."""
    return [p for word in words for p in (strip_stress(x) for x in word) if p]


def phone_labels(words: list[list[str]], lang: str, where: str = "") -> list[str]:
    """The phone label sequence for an utterance in `lang` (`en`: ARPAbet-39, else IPA)."""
    if any("(" in p for word in words for p in word):
        raise ValueError(f"eSpeak switched language inside {where or 'an utterance'}: {words}")
    return english_to_arpabet(words, where) if lang == "en" else ipa_phones(words)
