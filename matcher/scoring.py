"""Feature table → score in [0, 1]: a linear model over FEATURES, saved as JSON (never pickle)."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from scipy.special import expit

from matcher.features import FEATURES
from matcher.packaged import packaged
from matcher.residual import RESIDUAL_FORMAT, ResidualScorer
from matcher.trees import TREES_FORMAT, TreeScorer

MODEL_FORMAT = "duijie-linear/1"
MODELS_DIR = packaged("duijie_models")
DEFAULT_MODEL_DIR = MODELS_DIR / "default"
# The model for matching by words alone (encoder "none"): it gives the embedding cosine no weight.
LEXICAL_MODEL_DIR = MODELS_DIR / "lexical"
MODEL_FILE = "model.json"
# Features added after models were first saved: a model that predates one gives it weight 0.
LATER_FEATURES = ("semantic_cosine", "length_ratio", "need_coverage")


# The minimum score of a model whose card names none (models trained before min_score was chosen from data).
FALLBACK_MIN_SCORE = 0.35


def model_min_score(scorer: LinearScorer | TreeScorer | ResidualScorer) -> float:
    """The minimum score a model's card recommends (chosen on dev data when it was made)."""
    value = scorer.card.get("min_score")
    return float(value) if isinstance(value, int | float) and 0 <= value <= 1 else FALLBACK_MIN_SCORE


def default_model_dir(encoder: str) -> Path:
    """The bundled model that fits an encoder setting."""
    return LEXICAL_MODEL_DIR if encoder == "none" else DEFAULT_MODEL_DIR


class LinearScorer:
    """score = sigmoid(bias + Σ weight_f · (x_f − offset_f) / scale_f).

    Offsets and scales let a model trained on standardized features be stored as-is;
    the default model leaves them at 0 and 1 so its weights read directly.
    """

    # Reads the FEATURES alone: no embedding terms for pair_features to compute.
    projection = None

    def __init__(
        self,
        *,
        weights: Mapping[str, float],
        bias: float = 0.0,
        offset: Mapping[str, float] | None = None,
        scale: Mapping[str, float] | None = None,
        version: str = "unsaved",
        card: Mapping | None = None,
    ) -> None:
        unknown = set(weights) - set(FEATURES)
        if unknown:
            raise ValueError(f"weights: expected feature names from {FEATURES}, got {sorted(unknown)}")
        self.weights = {f: float(weights.get(f, 0.0)) for f in FEATURES}
        self.bias = float(bias)
        self.offset = {f: float((offset or {}).get(f, 0.0)) for f in FEATURES}
        self.scale = {f: float((scale or {}).get(f, 1.0)) for f in FEATURES}
        for name, value in [("bias", self.bias), *self.weights.items(), *self.offset.items()]:
            if not np.isfinite(value):
                raise ValueError(f"{name}: expected a finite number, got {value!r}")
        for name, value in self.scale.items():
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"scale of {name}: expected a positive finite number, got {value!r}")
        self.version = version
        self.card = dict(card or {})

    def _vectors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        weight = np.array([self.weights[f] for f in FEATURES])
        offset = np.array([self.offset[f] for f in FEATURES])
        scale = np.array([self.scale[f] for f in FEATURES])
        return weight, offset, scale

    def decision(self, values: np.ndarray) -> np.ndarray:
        """The linear part before the sigmoid; ranks exactly like `score`."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(FEATURES):
            raise ValueError(f"values: expected shape (n, {len(FEATURES)}), got {values.shape}")
        weight, offset, scale = self._vectors()
        return self.bias + ((values - offset) / scale) @ weight

    def score(self, values: np.ndarray, terms: np.ndarray | None = None) -> np.ndarray:
        """Scores of the pairs' feature rows; `terms` (embedding terms) is for scorers that read them."""
        return expit(self.decision(values))

    def to_json(self) -> dict:
        return {
            "format": MODEL_FORMAT,
            "version": self.version,
            "features": list(FEATURES),
            "weights": self.weights,
            "bias": self.bias,
            "offset": self.offset,
            "scale": self.scale,
            "card": self.card,
        }

    @classmethod
    def from_json(cls, data: Mapping, *, source: str = "model") -> LinearScorer:
        if not isinstance(data, Mapping) or data.get("format") != MODEL_FORMAT:
            got = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise ValueError(f"{source}: field 'format': expected {MODEL_FORMAT!r}, got {got!r}")
        missing = set(FEATURES) - set(data.get("weights", {})) - set(LATER_FEATURES)
        if missing:
            raise ValueError(
                f"{source}: field 'weights': expected a weight for every feature, missing {sorted(missing)}")
        return cls(weights=data["weights"], bias=data.get("bias", 0.0), offset=data.get("offset"),
                   scale=data.get("scale"), version=str(data.get("version", "unknown")), card=data.get("card"))

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write `model.json` in `directory`, atomically; refuse to replace one unless asked."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / MODEL_FILE
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path}: a model is already saved here; pass overwrite=True to replace it")
        if "created_at" not in self.card:
            self.card["created_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, directory: str | Path = DEFAULT_MODEL_DIR) -> LinearScorer:
        path, data = _read_model(directory)
        return cls.from_json(data, source=str(path))


def _read_model(directory: str | Path) -> tuple[Path, object]:
    path = Path(directory) / MODEL_FILE
    try:
        return path, json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no model.json in this model directory") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: expected a JSON model file, got unreadable content ({exc})") from None


Scorer = LinearScorer | TreeScorer | ResidualScorer


def load_scorer(directory: str | Path = DEFAULT_MODEL_DIR) -> Scorer:
    """Load whichever kind of scorer a model directory holds (linear, trees, residual), by its format field."""
    path, data = _read_model(directory)
    if isinstance(data, dict) and data.get("format") == TREES_FORMAT:
        return TreeScorer.from_json(data, Path(directory), source=str(path))
    if isinstance(data, dict) and data.get("format") == RESIDUAL_FORMAT:
        base = LinearScorer.from_json(data.get("base"), source=f"{path}: field 'base'")
        return ResidualScorer.from_json(data, Path(directory), base, source=str(path))
    return LinearScorer.from_json(data, source=str(path))


def save_scorer(scorer: Scorer, directory: str | Path, *, overwrite: bool = False) -> Path:
    """Write a scorer's model.json (and a tree or residual scorer's arrays) into `directory`."""
    directory = Path(directory)
    if isinstance(scorer, TreeScorer | ResidualScorer):
        if (directory / MODEL_FILE).exists() and not overwrite:
            raise FileExistsError(f"{directory / MODEL_FILE}: a model is already saved here; pass overwrite=True")
        directory.mkdir(parents=True, exist_ok=True)
        scorer.card.setdefault("created_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        scorer.save_arrays(directory)
        tmp = directory / (MODEL_FILE + ".tmp")
        tmp.write_text(json.dumps(scorer.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, directory / MODEL_FILE)
        return directory / MODEL_FILE
    return scorer.save(directory, overwrite=overwrite)
