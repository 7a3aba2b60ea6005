"""Score calibration shared by the trainers: Platt scaling on a dev split."""

from __future__ import annotations

import numpy as np


def fit_platt(scores: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Logistic calibration p = sigmoid(a·score + b), fitted by maximum likelihood on dev.

    Targets are Platt's smoothed labels ((N+ + 1)/(N+ + 2) and 1/(N- + 2)), so a dev
    split the model separates perfectly still gets a finite slope instead of 0/1
    probabilities. With one class only, the identity (a=1, b=0).
    """
    from scipy.optimize import minimize

    y = np.asarray(y, dtype=bool)
    z = np.asarray(scores, dtype=np.float64)
    if y.all() or not y.any():
        return {"a": 1.0, "b": 0.0}
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    target = np.where(y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(ab: np.ndarray) -> float:
        t = ab[0] * z + ab[1]
        return float(np.mean(np.logaddexp(0.0, t) - target * t))

    res = minimize(loss, np.array([1.0, 0.0]), method="L-BFGS-B")
    return {"a": float(res.x[0]), "b": float(res.x[1])}
