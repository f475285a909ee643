"""Model versions on disk: one folder per version under models/, each JSON (+ .npz), never pickle."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from matcher.features import FEATURES
from matcher.scoring import DEFAULT_MODEL_DIR, MODEL_FILE, Scorer, load_scorer, save_scorer

DEFAULT_VERSION = "default"
HOLDOUT_FILE = "holdout.npz"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str) -> str:
    # Version names become folder names: nothing that could climb out of models/.
    if not _NAME.match(name):
        raise ValueError(f"version: expected letters, digits, '.', '_' or '-' (at most 64), got {name!r}")
    return name


def version_dir(models_dir: Path, name: str, *, default: Path = DEFAULT_MODEL_DIR) -> Path:
    """The folder of a version; `default` is the bundled model's (the encoder's, see default_model_dir)."""
    return default if name == DEFAULT_VERSION else Path(models_dir) / check_name(name)


def versions(models_dir: Path) -> list[str]:
    found = sorted(p.name for p in Path(models_dir).iterdir() if (p / MODEL_FILE).is_file() and _NAME.match(p.name))
    return [DEFAULT_VERSION] + [name for name in found if name != DEFAULT_VERSION]


def load(models_dir: Path, name: str, *, default: Path = DEFAULT_MODEL_DIR) -> Scorer:
    path = version_dir(models_dir, name, default=default)
    if not (path / MODEL_FILE).is_file():
        raise LookupError(f"version: expected one of {', '.join(versions(models_dir))}, got {name!r}")
    return load_scorer(path)


class Holdout(NamedTuple):
    """A version's held-out decisions: feature rows, labels, need codes, and the pairs' embeddings (float16,
    None when the version was trained without them), which a residual model needs to score the rows."""

    values: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    need_dense: np.ndarray | None
    resource_dense: np.ndarray | None


def save(models_dir: Path, name: str, scorer: Scorer, holdout_values: np.ndarray, holdout_labels: np.ndarray,
         holdout_groups: np.ndarray, holdout_dense: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Write a new version with its held-out decisions (for the promotion guard); never overwrites.

    `holdout_dense` (the pairs' two embeddings) is stored in float16: the guard compares rankings, which
    half precision leaves as they are, at half the size (768 bytes per pair with e5-small).
    """
    path = version_dir(models_dir, name)
    if path.exists():
        raise FileExistsError(f"{path}: version {name!r} exists already; choose another --name")
    scorer.version = name
    save_scorer(scorer, path)
    # Need ids become small integers: the guard only needs to know which rows share a need.
    _, group_codes = np.unique(holdout_groups.astype(str), return_inverse=True)
    dense = {}
    if holdout_dense is not None and holdout_dense[0].shape[1]:
        dense = {"need_dense": holdout_dense[0].astype(np.float16),
                 "resource_dense": holdout_dense[1].astype(np.float16)}
    np.savez_compressed(path / HOLDOUT_FILE, values=holdout_values, labels=holdout_labels, groups=group_codes,
                        **dense)
    return path


def holdout(models_dir: Path, name: str) -> Holdout | None:
    path = version_dir(models_dir, name) / HOLDOUT_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        values = npz["values"]
        if values.shape[1] < len(FEATURES):
            # Saved before features were appended: the later ones are 0 there, as the old models read them.
            values = np.hstack([values, np.zeros((len(values), len(FEATURES) - values.shape[1]))])
        return Holdout(values, npz["labels"], npz["groups"], npz.get("need_dense"),
                       npz.get("resource_dense"))
