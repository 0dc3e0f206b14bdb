"""Seeded sentence grammars (English, Spanish, Mandarin pinyin) and the keyword-spotting words.

`sample_sentence(lang, rng)` draws one sentence from a fixed template grammar; the number of
distinct sentences is in the millions, so a corpus rarely repeats one. Words are lower-case and
spelled out (no digits), and every Mandarin syllable carries its tone digit, as the
`cmn-latn-pinyin` voice expects.
"""

from __future__ import annotations

import numpy as np

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
                 "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
KEYWORD_CLASSES = KEYWORDS + (UNKNOWN, SILENCE)

_EN = {
    "name": ["john", "mary", "peter", "susan", "david", "linda", "tom", "anna", "mike", "kate",
             "paul", "emma", "jack", "lucy", "sam", "nina", "robert", "helen"],
    "det": ["the", "a", "this", "that", "my", "your", "our", "her", "his"],
    "adj": ["big", "small", "red", "green", "blue", "old", "new", "quiet", "happy", "dark",
            "bright", "warm", "cold", "heavy", "soft", "little", "yellow", "clean", "strange",
            "famous", "broken", "empty"],
    "noun": ["dog", "cat", "house", "car", "tree", "book", "table", "window", "garden", "river",
             "bird", "apple", "chair", "phone", "lamp", "door", "boat", "letter", "cup", "horse",
             "picture", "bottle", "kitchen", "road", "teacher", "doctor", "child", "farmer",
             "student", "basket", "mountain", "pencil", "flower", "jacket"],
    "verb_past": ["saw", "found", "moved", "painted", "opened", "closed", "bought", "sold",
                  "carried", "washed", "liked", "watched", "followed", "pushed", "cleaned",
                  "fixed", "dropped", "visited", "forgot", "wanted"],
    "verb_base": ["see", "find", "move", "paint", "open", "close", "buy", "sell", "carry",
                  "wash", "like", "watch", "follow", "push", "clean", "fix", "drop", "visit"],
    "verb_3s": ["sees", "finds", "moves", "opens", "likes", "watches", "follows", "cleans",
                "fixes", "needs", "wants", "keeps", "touches", "remembers"],
    "prep": ["near", "behind", "under", "beside", "inside", "above", "across", "around"],
    "place": ["the park", "the station", "the school", "the market", "the garden", "the beach",
              "the river", "the city", "the village", "the office", "the bridge", "the hill",
              "the museum", "the library", "the hospital", "the farm"],
    "time": ["today", "yesterday", "this morning", "last night", "on monday", "at noon",
             "every day", "in the evening", "after dinner", "before lunch", "on sunday",
             "last week", "next year", "at midnight"],
    "number": ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve",
               "twenty", "many", "some", "several"],
    "plural": ["dogs", "cats", "books", "cars", "birds", "apples", "chairs", "boats", "cups",
               "horses", "letters", "bottles", "children", "flowers", "pencils", "baskets"],
    "command": ["turn on", "turn off", "open", "close", "start", "stop", "check", "move"],
    "device": ["light", "radio", "heater", "fan", "window", "door", "music", "oven", "alarm",
               "television", "computer", "shower"],
    "room": ["kitchen", "bedroom", "office", "garage", "hall", "bathroom", "living room",
             "basement", "attic"],
    "adv": ["slowly", "quickly", "quietly", "happily", "carefully", "loudly", "again", "alone"],
    "plural_verb": ["are sleeping", "are waiting", "are playing", "were running", "were eating",
                    "stood still", "sat down", "came back", "went home"],
    "single_verb": ["is sleeping", "was waiting", "walked home", "fell asleep", "sang a song",
                    "made dinner", "called a friend", "read the news", "ran away"],
}
_EN_TEMPLATES = [
    "{det} {adj} {noun} {verb_3s} {det} {noun}",
    "{name} {verb_past} {det} {adj} {noun} {time}",
    "{name} {verb_past} {det} {noun} {prep} {place}",
    "please {command} the {device} in the {room}",
    "can you {command} the {device} {time}",
    "{number} {adj} {plural} {plural_verb} {prep} {place}",
    "{name} and {name} {verb_past} {number} {plural} {time}",
    "the {noun} {prep} the {noun} is {adj}",
    "{time} {name} {single_verb} {adv}",
    "did {name} {verb_base} the {adj} {noun} {prep} {place}",
    "{det} {noun} {single_verb} {prep} {place}",
]

_ES = {
    "subj": ["el niño", "la niña", "mi hermano", "mi madre", "el perro", "la profesora",
             "nuestro vecino", "el médico", "la abuela", "tu amigo", "el panadero", "mi prima"],
    "vo": ["come una manzana", "bebe agua fría", "lee un libro", "compra pan",
           "busca las llaves", "abre la ventana", "cierra la puerta", "escribe una carta",
           "mira la televisión", "canta una canción", "pinta la casa", "lava los platos",
           "cuida el jardín", "prepara la cena", "toca la guitarra", "vende fruta"],
    "place": ["en la cocina", "en el parque", "cerca del río", "en la escuela", "en casa",
              "en el mercado", "junto al puente", "en la playa", "en el pueblo"],
    "time": ["por la mañana", "por la noche", "todos los días", "hoy", "ayer", "el domingo",
             "después de comer", "a veces", "los sábados"],
}
_ES_TEMPLATES = ["{subj} {vo} {place}", "{time} {subj} {vo}", "{subj} {vo} {place} {time}",
                 "{time} {subj} {vo} {place}"]

_CMN = {
    "subj": ["wo3", "ni3", "ta1", "wo3 men5", "ta1 men5", "lao3 shi1", "xue2 sheng1",
             "peng2 you3", "ma1 ma1", "ba4 ba4", "di4 di4", "jie3 jie3", "yi1 sheng1"],
    "time": ["jin1 tian1", "ming2 tian1", "zuo2 tian1", "xian4 zai4", "zao3 shang4",
             "wan3 shang4", "xing1 qi1 tian1"],
    "adv": ["dou1", "ye3", "hen3 xiang3", "bu4 xiang3", "xi3 huan1", "yao4", "chang2 chang2"],
    "vo": ["chi1 mi3 fan4", "he1 cha2", "kan4 shu1", "mai3 ping2 guo3", "xue2 xi2 zhong1 wen2",
           "da3 dian4 hua4", "kan4 dian4 shi4", "qu4 xue2 xiao4", "hui2 jia1", "zuo4 fan4",
           "xie3 zi4", "chang4 ge1", "ting1 yin1 yue4", "he1 shui3", "zuo4 huo3 che1",
           "kai1 che1", "shui4 jiao4", "da3 qiu2", "mai3 yi1 fu2"],
    "place": ["zai4 jia1 li3", "zai4 xue2 xiao4", "zai4 gong1 yuan2", "zai4 shang1 dian4",
              "zai4 fan4 guan3", "zai4 yi1 yuan4"],
}
_CMN_TEMPLATES = ["{time} {subj} {adv} {vo}", "{subj} {place} {vo}",
                  "{subj} {time} {place} {adv} {vo}", "{subj} {adv} {vo}"]

GRAMMARS = {"en": (_EN, _EN_TEMPLATES), "es": (_ES, _ES_TEMPLATES),
            "cmn": (_CMN, _CMN_TEMPLATES)}


def sample_sentence(lang: str, rng: np.random.Generator) -> str:
    """One sentence of language `lang` (`en`, `es` or `cmn`), drawn with `rng`."""
    slots, templates = GRAMMARS[lang]
    template = templates[int(rng.integers(len(templates)))]
    out, rest = [], template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        name, _, rest = tail.partition("}")
        options = slots[name]
        out.append(head + options[int(rng.integers(len(options)))])
    out.append(rest)
    return "".join(out)


def grammar_words(lang: str) -> list[str]:
    """Every word the grammar of `lang` can produce (for checking pronunciations)."""
    slots, templates = GRAMMARS[lang]
    words = {w for options in slots.values() for phrase in options for w in phrase.split()}
    words |= {w for t in templates for w in t.split() if "{" not in w}
    return sorted(words)


# Intent classification, after Fluent Speech Commands: a spoken command names an action, an
# object and (for lights and heat) a location; several phrasings per intent, so that a sentence
# is not the lookup key of its intent.
IC_ACTIONS = ("activate", "deactivate", "increase", "decrease", "bring", "change_language")
IC_OBJECTS = ("none", "lights", "lamp", "heat", "volume", "music", "newspaper", "juice", "socks",
              "shoes", "chinese", "korean", "english", "german")
IC_LOCATIONS = ("none", "kitchen", "bedroom", "washroom")
_LANGUAGE_PHRASINGS = ("switch the language to {}", "change the language to {}",
                       "set the language to {}", "switch to {}", "use {}")
# (action, object, phrasings); only intents on `_LOCATED_OBJECTS` take a location
_IC_INTENTS = (
    ("activate", "lights", ("turn on the lights", "switch on the lights", "turn the lights on",
                            "switch the lights on", "put the lights on")),
    ("deactivate", "lights", ("turn off the lights", "switch off the lights", "turn the lights off",
                              "switch the lights off", "kill the lights")),
    ("activate", "lamp", ("turn on the lamp", "switch on the lamp", "turn the lamp on")),
    ("deactivate", "lamp", ("turn off the lamp", "switch off the lamp", "turn the lamp off")),
    ("increase", "heat", ("turn up the heat", "turn the heat up", "increase the heating",
                          "make it warmer", "raise the temperature")),
    ("decrease", "heat", ("turn down the heat", "turn the heat down", "decrease the heating",
                          "make it cooler", "lower the temperature")),
    ("increase", "volume", ("turn up the volume", "increase the volume", "make it louder",
                            "turn the sound up", "raise the volume")),
    ("decrease", "volume", ("turn down the volume", "decrease the volume", "make it quieter",
                            "turn the sound down", "lower the volume")),
    ("activate", "music", ("play the music", "put on some music", "start the music",
                           "play some music")),
    ("deactivate", "music", ("stop the music", "turn off the music", "pause the music",
                             "switch the music off")),
    ("bring", "newspaper", ("bring me the newspaper", "get me the newspaper", "fetch the newspaper",
                            "bring me the paper")),
    ("bring", "juice", ("bring me some juice", "get me a glass of juice", "fetch the juice",
                        "bring me the juice")),
    ("bring", "socks", ("bring me my socks", "get my socks", "fetch my socks", "bring me some socks")),
    ("bring", "shoes", ("bring me my shoes", "get my shoes", "fetch my shoes", "bring me the shoes")),
    ("change_language", "none", ("change the language", "switch the language",
                                 "use another language", "change the system language")),
) + tuple(("change_language", lang, tuple(p.format(lang) for p in _LANGUAGE_PHRASINGS))
          for lang in ("chinese", "korean", "english", "german"))
_LOCATED_OBJECTS = ("lights", "heat")
_IC_PREFIXES = ("", "please ", "could you ", "can you ", "hey ")


def sample_command(rng: np.random.Generator) -> tuple[str, str, str, str]:
    """One spoken command and its intent: `(text, action, object, location)`."""
    action, obj, phrasings = _IC_INTENTS[int(rng.integers(len(_IC_INTENTS)))]
    text = phrasings[int(rng.integers(len(phrasings)))]
    location = IC_LOCATIONS[int(rng.integers(len(IC_LOCATIONS)))] if obj in _LOCATED_OBJECTS else "none"
    if location != "none":
        # "the bedroom lights" or "... in the bedroom"
        if "the lights" in text and rng.random() < 0.5:
            text = text.replace("the lights", f"the {location} lights")
        else:
            text = f"{text} in the {location}"
    prefix = _IC_PREFIXES[int(rng.integers(len(_IC_PREFIXES)))]
    suffix = " please" if not prefix and rng.random() < 0.3 else ""
    return prefix + text + suffix, action, obj, location


# Slot filling, after SNIPS: requests of four intents whose slot values are tagged in the label
# sequence, as SUPERB's character-slot targets do (`B-city p a r i s E-city`).
SF_SLOT_TYPES = ("city", "day", "artist", "service", "time", "party_size")
_SF_SLOTS = {
    "city": ["paris", "london", "boston", "tokyo", "berlin", "madrid", "chicago", "denver",
             "dublin", "seattle", "rome", "toronto", "sydney", "new york", "los angeles",
             "san francisco", "cape town", "hong kong"],
    "day": ["today", "tomorrow", "tonight", "this weekend", "next week", "on monday", "on friday",
            "on saturday", "this evening", "next month"],
    "artist": ["adele", "madonna", "queen", "the beatles", "elvis presley", "nina simone",
               "bob marley", "frank sinatra", "miles davis", "johnny cash", "ella fitzgerald",
               "david bowie", "louis armstrong", "aretha franklin"],
    "service": ["spotify", "youtube", "deezer", "pandora", "soundcloud", "the radio", "napster"],
    "time": ["seven am", "six thirty", "noon", "midnight", "five pm", "eight fifteen",
             "half past nine", "quarter to eight", "nine in the morning"],
    "party_size": ["two", "three", "four", "five", "six", "eight", "ten", "twelve"],
}
_SF_TEMPLATES = (
    "what is the weather in {city} {day}", "what will the weather be like in {city} {day}",
    "will it rain in {city} {day}", "is it going to snow {day} in {city}",
    "how hot will it be in {city} {day}", "tell me the forecast for {city}",
    "play {artist} on {service}", "play some music by {artist}", "put on {artist}",
    "i want to hear {artist} on {service}", "play the latest song by {artist}",
    "open {service} and play {artist}",
    "set an alarm for {time}", "wake me up at {time} {day}", "set an alarm for {time} {day}",
    "remind me at {time}",
    "book a table for {party_size} in {city} {day}", "reserve a table for {party_size} at {time}",
    "find a restaurant in {city} for {party_size} people",
)


def slot_tokens(words: list[tuple[str, str | None]]) -> str:
    """The slot-tagged character sequence of `(phrase, slot type or None)` pieces: characters as
    tokens, `|` between words, each slot's characters between `B-<type>` and `E-<type>`."""
    pieces = []
    for phrase, slot in words:
        chars = " | ".join(" ".join(word) for word in phrase.split())
        pieces.append(f"B-{slot} {chars} E-{slot}" if slot else chars)
    return " | ".join(pieces)


def sample_slot_request(rng: np.random.Generator) -> tuple[str, str]:
    """One request and its slot-tagged character sequence: `(text, slots)`."""
    template = _SF_TEMPLATES[int(rng.integers(len(_SF_TEMPLATES)))]
    pieces: list[tuple[str, str | None]] = []
    for word in template.split():
        if word.startswith("{"):
            options = _SF_SLOTS[word[1:-1]]
            pieces.append((options[int(rng.integers(len(options)))], word[1:-1]))
        else:
            pieces.append((word, None))
    return " ".join(phrase for phrase, _ in pieces), slot_tokens(pieces)


def slot_vocabulary_tokens() -> tuple[str, ...]:
    """The tokens of every slot-tagged sequence: the grammar's letters, `|`, then the markers."""
    letters = sorted({c for w in intent_words() for c in w})
    return tuple(letters) + ("|",) + tuple(f"{m}-{t}" for t in SF_SLOT_TYPES for m in "BE")


def intent_words() -> list[str]:
    """Every word the command (IC) and request (SF) grammars can produce."""
    phrases = [p for _, _, phrasings in _IC_INTENTS for p in phrasings] + list(_IC_PREFIXES)
    phrases += list(IC_LOCATIONS[1:]) + ["in the"] + list(_SF_TEMPLATES)
    phrases += [v for values in _SF_SLOTS.values() for v in values]
    return sorted({w for p in phrases for w in p.split() if "{" not in w})
