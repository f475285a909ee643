"""A gradient-boosted scorer stored as plain arrays (.npz) and evaluated here, so loading runs no code."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from scipy.special import expit

from matcher.features import FEATURES

TREES_FORMAT = "duijie-trees/1"
TREES_FILE = "trees.npz"


class TreeScorer:
    """score = sigmoid(init + rate · Σ leaf value of each regression tree).

    The trees are scikit-learn's GradientBoostingClassifier trees, exported as the node arrays
    (children, feature, threshold, value) and walked with numpy.
    """

    projection = None  # reads the FEATURES alone

    def __init__(self, *, arrays: Mapping[str, np.ndarray], init: float, rate: float, version: str = "unsaved",
                 card: Mapping | None = None) -> None:
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        for name in ("left", "right", "feature", "threshold", "value", "roots"):
            if name not in self.arrays:
                raise ValueError(f"trees: expected an array named {name!r}, got {sorted(self.arrays)}")
        if self.arrays["feature"].max(initial=-1) >= len(FEATURES):
            raise ValueError(f"trees: expected feature indices below {len(FEATURES)}")
        self.init, self.rate = float(init), float(rate)
        self.version = version
        self.card = dict(card or {})

    @classmethod
    def from_sklearn(cls, model, **kwargs) -> TreeScorer:
        left, right, feature, threshold, value, roots = [], [], [], [], [], []
        offset = 0
        for (tree,) in model.estimators_:
            t = tree.tree_
            roots.append(offset)
            # Leaves have children -1; shift real children by the tree's offset in the flat arrays.
            left.append(np.where(t.children_left >= 0, t.children_left + offset, -1))
            right.append(np.where(t.children_right >= 0, t.children_right + offset, -1))
            feature.append(t.feature)
            threshold.append(t.threshold)
            value.append(t.value[:, 0, 0])
            offset += t.node_count
        init = float(model.init_.predict_proba(np.zeros((1, len(FEATURES))))[0, 1])
        arrays = {"left": np.concatenate(left), "right": np.concatenate(right),
                  "feature": np.concatenate(feature), "threshold": np.concatenate(threshold),
                  "value": np.concatenate(value), "roots": np.array(roots)}
        return cls(arrays=arrays, init=float(np.log(init / (1 - init))), rate=model.learning_rate, **kwargs)

    def decision(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(FEATURES):
            raise ValueError(f"values: expected shape (n, {len(FEATURES)}), got {values.shape}")
        a = self.arrays
        total = np.full(len(values), self.init)
        rows = np.arange(len(values))
        for root in a["roots"]:
            node = np.full(len(values), root)
            while True:
                inner = a["left"][node] >= 0
                if not inner.any():
                    break
                go_left = values[rows, np.maximum(a["feature"][node], 0)] <= a["threshold"][node]
                node = np.where(inner, np.where(go_left, a["left"][node], a["right"][node]), node)
            total += self.rate * a["value"][node]
        return total

    def score(self, values: np.ndarray, terms: np.ndarray | None = None) -> np.ndarray:
        return expit(self.decision(values))

    def to_json(self) -> dict:
        return {"format": TREES_FORMAT, "version": self.version, "features": list(FEATURES), "init": self.init,
                "rate": self.rate, "trees": len(self.arrays["roots"]), "card": self.card}

    def save_arrays(self, directory: Path) -> None:
        np.savez_compressed(directory / TREES_FILE, **self.arrays)

    @classmethod
    def from_json(cls, data: Mapping, directory: Path, *, source: str) -> TreeScorer:
        saved = list(data.get("features", []))
        # Trees saved before a feature was appended name a prefix of FEATURES; their indices still hold.
        if not saved or saved != list(FEATURES[:len(saved)]):
            raise ValueError(f"{source}: field 'features': expected {list(FEATURES)}, got {data.get('features')}")
        with np.load(directory / TREES_FILE, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return cls(arrays=arrays, init=data["init"], rate=data["rate"], version=str(data.get("version", "unknown")),
                   card=data.get("card"))
