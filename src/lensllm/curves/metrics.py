"""How well a selector ranks the candidates, measured on the true losses at the target size.

- PearCorr = Pearson r between the method's per-model score and the true target loss, x100.
  For loss predictors a good method scores near +100; for ModelSize (score log N, larger is better)
  a good method scores near -100, as in Lin et al. (2024).
- RelAcc = (L_worst - L_selected) / (L_worst - L_best) x100, on true target losses over all
  candidates, where the selected model is the method's best-scored one.
- RMSE = sqrt(mean((predicted - true)^2)) of target losses, in loss units, for predictors.
"""

from __future__ import annotations

import numpy as np


def pearcorr(scores, true_losses) -> float:
    """Pearson correlation of `scores` with `true_losses`, x100 (NaN if either is constant)."""
    scores, true_losses = np.asarray(scores, float), np.asarray(true_losses, float)
    if len(scores) < 2 or np.ptp(scores) == 0 or np.ptp(true_losses) == 0:
        return float("nan")
    return float(100.0 * np.corrcoef(scores, true_losses)[0, 1])


def relacc(selected_loss: float, all_true_losses) -> float:
    """(worst - selected) / (worst - best) x100 over the true target losses of all candidates."""
    losses = np.asarray(all_true_losses, float)
    worst, best = losses.max(), losses.min()
    if worst == best:
        return 100.0
    return float(100.0 * (worst - selected_loss) / (worst - best))


def rmse(predicted, true_losses) -> float:
    """Root mean squared error of predicted target losses, in loss units."""
    predicted, true_losses = np.asarray(predicted, float), np.asarray(true_losses, float)
    return float(np.sqrt(np.mean((predicted - true_losses) ** 2)))
