"""QUESST 2014 as released (SUPERB's query-by-example spoken term detection, QbE): no training.

Under `root` (the `quesst14Database` folder: `Audio/`, `dev_queries/`, `eval_queries/`,
`scoring/`), `scoring/language_key_utterances.lst` lists the documents and
`scoring/language_key_{dev,eval}.lst` the dev and eval queries, one `<path> <language>` a line
whose path starts with a folder name that is dropped (the rest is relative to `root`). As SUPERB's
recipe, only `LANGUAGE` (English) audio is kept. The hits are the `LEXEME` lines of the ground
truth `scoring/groundtruth_quesst14_{dev,eval}/quesst14_{dev,eval}.rttm`, each pairing a document
`quesst14_<n>` (second field) with a query `quesst14_{dev,eval}_<n>`. SUPERB's dev split is the
dev queries, its test split the eval queries; both search the same documents.

`qbe_split(config)` returns what the evaluation's QbE scoring reads (as the demo's
`evaluate.qbe.qbe_split`); a `quesst14` section is never an utterance dataset, so `open_split`
refuses it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from speechft_jax.config_loading import check
from speechft_jax.data.errors import DataError
from speechft_jax.data.manifest import Example
from speechft_jax.data.source import FileSource
from speechft_jax.errors import ConfigError

LANGUAGE = "nnenglish"  # SUPERB scores the English part of QUESST 2014 only
QUERY_SETS = {"dev": "dev", "test": "eval"}  # SUPERB's split -> QUESST's query set
QUERY_NAME = re.compile(r"quesst14_(dev|eval)_\d+")


def open_split(config):
    """Refused: QUESST 2014 is queries, documents and hits (`qbe_split`), not one split of utterances."""
    raise ConfigError(f"data.type='quesst14' (root {config.root}) is read by a qbe task (queries, documents "
                      "and their hits), not as a split of utterances")


def qbe_split(config):
    """`(queries, documents, relevant)` of SUPERB's split `config.split` (dev: the dev queries, test:
    the eval queries): `FileSource`s of the English queries and documents (fields `id` = the file's
    name, `language`), and `relevant` bool `[queries, documents]`, True where the ground truth puts
    the query in the document. As the demo's split, only queries with at least one hit and one miss
    among the documents are kept (MTWV needs both)."""
    check(config.split in QUERY_SETS, "data.split", config.split,
          "dev or test (QUESST 2014's dev or eval queries; it has no train split)")
    root = Path(config.root).expanduser()
    if not root.is_dir():
        raise DataError(str(root), "folder not found (data.root: the quesst14Database folder)")
    query_set = QUERY_SETS[config.split]
    scoring = root / "scoring"
    documents = listed_audio(root, scoring / "language_key_utterances.lst")
    queries = listed_audio(root, scoring / f"language_key_{query_set}.lst")
    rttm = scoring / f"groundtruth_quesst14_{query_set}" / f"quesst14_{query_set}.rttm"
    document_index = {e.fields["id"]: n for n, e in enumerate(documents)}
    query_index = {e.fields["id"]: n for n, e in enumerate(queries)}
    relevant = np.zeros((len(queries), len(documents)), bool)
    for query, document in ground_truth_hits(rttm):
        if query in query_index and document in document_index:  # skips the other languages' pairs
            relevant[query_index[query], document_index[document]] = True
    keep = relevant.any(axis=1) & ~relevant.all(axis=1)
    if not keep.any():
        raise DataError(str(rttm), f"pairs none of the {len(queries)} {LANGUAGE} {query_set} queries with "
                                   f"some but not all of the {len(documents)} {LANGUAGE} documents: no QbE queries")
    kept = [q for q, k in zip(queries, keep) if k]
    return FileSource(kept), FileSource(documents), relevant[keep]


def listed_audio(root: Path, list_file: Path) -> list[Example]:
    """The `LANGUAGE` entries of a `<path> <language>` list, the path's first folder dropped."""
    examples = []
    for where, parts in _fields_by_line(list_file, "QUESST 2014's layout: scoring/language_key_*.lst under "
                                                   "data.root, the quesst14Database folder"):
        if len(parts) != 2:
            raise DataError(where, "expected '<path> <language>'")
        path, language = parts
        if language == LANGUAGE:
            # the list's paths start with the database's own folder name, e.g. quesst14Database/Audio/...
            relative = path.split("/", 1)[-1]
            examples.append(Example(path=str(root / relative), origin=where,
                                    fields={"id": Path(relative).stem, "language": language}))
    if not examples:
        raise DataError(str(list_file), f"lists no {LANGUAGE} audio")
    return examples


def ground_truth_hits(rttm: Path) -> list[tuple[str, str]]:
    """`(query, document)` of every LEXEME line of a QUESST 2014 ground-truth RTTM."""
    hits = []
    for where, parts in _fields_by_line(rttm, "QUESST 2014's ground truth: "
                                              "scoring/groundtruth_quesst14_<set>/quesst14_<set>.rttm under data.root"):
        if parts[0] != "LEXEME":
            continue
        query = next((p for p in parts[2:] if QUERY_NAME.fullmatch(p)), None)
        if query is None:
            raise DataError(where, "expected 'LEXEME <document> <channel> <begin> <duration> "
                                   "<query quesst14_<set>_<n>> ...'")
        hits.append((query, parts[1]))
    return hits


def _fields_by_line(path: Path, layout: str):
    """`(path:line, whitespace-split fields)` of each non-blank line of `path`; a one-line
    `DataError` naming the file and `layout` (where it belongs) when it is missing."""
    if not path.is_file():
        raise DataError(str(path), f"file not found ({layout})")
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            yield f"{path}:{lineno}", line.split()
