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
