"""The fitted scoring: logistic models over the feature vectors, read from `weights.json`.

`eval/fit_scoring.py` writes that file deterministically from named data, with the data's hash, the feature
names, the thresholds it chose and its cross-validated figures; nothing here is set by hand. Refit with
`python eval/fit_scoring.py --index-dir DIR` (the README says how).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.answer.features import SENTENCE_FEATURES, SPAN_FEATURES
from rag.answer.reading import Thresholds
from rag.errors import ModelError

WEIGHTS = Path(__file__).with_name("weights.json")


@dataclass(frozen=True)
class Logistic:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(-1, len(self.features))
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.logits(x), -30, 30)))

    def to_dict(self) -> dict:
        return {
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": float(self.intercept),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Logistic:
        return cls(
            tuple(d["features"]),
            np.asarray(d["mean"], dtype=np.float64),
            np.asarray(d["scale"], dtype=np.float64),
            np.asarray(d["coef"], dtype=np.float64),
            float(d["intercept"]),
        )


@dataclass(frozen=True)
class ScoringModel:
    sentence: Logistic
    span: Logistic
    thresholds: Thresholds
    meta: dict

    @classmethod
    def load(
        cls,
        path: Path = WEIGHTS,
        sentence_features: tuple[str, ...] = SENTENCE_FEATURES,
        span_features: tuple[str, ...] = SPAN_FEATURES,
    ) -> ScoringModel:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ModelError(
                f"Cannot read the answer-scoring weights at {path} ({e}); refit them with `python eval/fit_scoring.py`."
            ) from e
        model = cls(
            Logistic.from_dict(d["sentence"]),
            Logistic.from_dict(d["span"]),
            Thresholds(**d["thresholds"]),
            {k: v for k, v in d.items() if k not in ("sentence", "span", "thresholds")},
        )
        for part, names in (("sentence", sentence_features), ("span", span_features)):
            if getattr(model, part).features != names:
                raise ModelError(
                    f"The {part} weights in {path} were fitted for other features than this version "
                    "computes; refit them with `python eval/fit_scoring.py`."
                )
        return model

    def to_dict(self) -> dict:
        return {
            **self.meta,
            "sentence": self.sentence.to_dict(),
            "span": self.span.to_dict(),
            "thresholds": self.thresholds.__dict__,
        }


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))
