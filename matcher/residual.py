"""A learned scorer that reads the frozen embeddings: the calibrated default plus a residual on their interactions.

score = sigmoid(base(x) + strength · (t + z(x) · w + b)), where base is the default linear model (the
calibrated cosine and its proximity bonuses), z(x) the standardized FEATURES of the pair and
t = [|u − v|, u ⊙ v] · p its embeddings' interaction term. The embeddings stay frozen: only p, w and b are
learned, by logistic regression, and `strength` is chosen on needs the fit did not see, so a deployment's
model moves away from the default only as far as its own decisions show it should.

t is computed where the embeddings are (features.interaction_terms, inside pair_features), so a candidate
search never copies embedding pairs around: this scorer's `projection` asks for it. Stored as JSON plus
`residual.npz` (read with allow_pickle=False), so loading a model file runs no code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.special import expit

from matcher.features import FEATURES

RESIDUAL_FORMAT = "duijie-residual/1"
RESIDUAL_FILE = "residual.npz"
_ARRAYS = ("projection", "weights", "offset", "scale")


class BaseModel(Protocol):
    """The model the residual is added to (a LinearScorer)."""

    def decision(self, values: np.ndarray) -> np.ndarray: ...

    def to_json(self) -> dict: ...


class ResidualScorer:
    """The default model's decision plus a learned residual over the pair's features and embedding terms."""

    def __init__(self, *, base: BaseModel, projection: np.ndarray, weights: np.ndarray, offset: np.ndarray,
                 scale: np.ndarray, bias: float, strength: float, version: str = "unsaved",
                 card: Mapping | None = None) -> None:
        self.base = base
        self.projection = np.asarray(projection, dtype=np.float32)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.offset = np.asarray(offset, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.bias, self.strength = float(bias), float(strength)
        n = len(FEATURES)
        if self.projection.ndim != 2 or self.projection.shape[1] != 1 or self.projection.shape[0] % 2:
            raise ValueError(f"projection: expected shape (2 x embedding size, 1), got {self.projection.shape}")
        for name in ("weights", "offset", "scale"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name}: expected {n} values, one per feature, got shape {getattr(self, name).shape}")
        for name in _ARRAYS:
            if not np.isfinite(getattr(self, name)).all():
                raise ValueError(f"{name}: expected finite numbers")
        if (self.scale <= 0).any():
            raise ValueError("scale: expected positive numbers")
        if not (np.isfinite(self.bias) and np.isfinite(self.strength) and self.strength >= 0):
            raise ValueError(f"bias and strength: expected finite numbers, strength >= 0, got {bias!r}, {strength!r}")
        self.version = version
        self.card = dict(card or {})

    @property
    def dim(self) -> int:
        """The embedding size the model was trained on."""
        return self.projection.shape[0] // 2

    def residual(self, values: np.ndarray, terms: np.ndarray | None) -> np.ndarray:
        """The learned part alone, before `strength`."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(FEATURES):
            raise ValueError(f"values: expected shape (n, {len(FEATURES)}), got {values.shape}")
        if terms is None or len(terms) != len(values):
            raise ValueError("terms: this model reads each pair's embedding terms (pair_features with its "
                             "projection); none were given for these pairs")
        return np.asarray(terms, np.float64)[:, 0] + ((values - self.offset) / self.scale) @ self.weights + self.bias

    def decision(self, values: np.ndarray, terms: np.ndarray | None = None) -> np.ndarray:
        return self.base.decision(values) + self.strength * self.residual(values, terms)

    def score(self, values: np.ndarray, terms: np.ndarray | None = None) -> np.ndarray:
        return expit(self.decision(values, terms))

    def to_json(self) -> dict[str, Any]:
        return {"format": RESIDUAL_FORMAT, "version": self.version, "features": list(FEATURES),
                "embedding_dim": self.dim, "strength": self.strength, "bias": self.bias,
                "feature_weights": dict(zip(FEATURES, np.round(self.weights, 6).tolist(), strict=True)),
                "base": self.base.to_json(), "card": self.card}

    def save_arrays(self, directory: Path) -> None:
        np.savez_compressed(directory / RESIDUAL_FILE, **{name: getattr(self, name) for name in _ARRAYS})

    @classmethod
    def from_json(cls, data: Mapping, directory: Path, base: BaseModel, *, source: str) -> ResidualScorer:
        """The saved model; `base` is its "base" entry already read (by scoring.load_scorer)."""
        if list(data.get("features", [])) != list(FEATURES):
            raise ValueError(f"{source}: field 'features': expected {list(FEATURES)}, got {data.get('features')}")
        path = Path(directory) / RESIDUAL_FILE
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in _ARRAYS}
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: the residual model's arrays are missing") from None
        except (KeyError, ValueError, OSError) as exc:
            raise ValueError(f"{path}: expected the arrays {', '.join(_ARRAYS)}, got unreadable content ({exc})") \
                from None
        try:
            return cls(base=base, **arrays, bias=data["bias"], strength=data["strength"],
                       version=str(data.get("version", "unknown")), card=data.get("card"))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{source}: expected fields 'bias' and 'strength', got {exc}") from None
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
