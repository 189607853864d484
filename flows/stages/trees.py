"""Trees: gradient-boosted tree ensembles stored as data, evaluated with NumPy.

Takes an ensemble exported by a training script in benchmarks/ (flat arrays in JSON) and rows
of features; gives probabilities. Used by the boilerplate classifier and the sentence-boundary
classifier: inference needs no machine-learning library at run time.
"""

from __future__ import annotations

import numpy as np


class Forest:
    """A gradient-boosted tree ensemble (binary, log-loss) as flat arrays: one row per tree,
    one column per node; a node goes left when its feature is at most its threshold."""

    def __init__(self, spec: dict) -> None:
        self.baseline = float(spec["baseline"])
        feature = np.asarray(spec["feature"], dtype=np.int64)
        n_trees, width = feature.shape
        leaf = np.asarray(spec["leaf"], dtype=bool)
        # Nodes numbered across the whole ensemble (tree t's node n is t * width + n), and a
        # leaf's children are the leaf itself: every step is a few flat lookups, the same for
        # every row, and a row that reached its leaf stays there.
        base = (np.arange(n_trees) * width)[:, None]
        self.roots = base[:, 0]
        self.feature = feature.ravel()
        self.threshold = np.asarray(spec["threshold"], dtype=np.float64).ravel()
        itself = np.arange(width)
        self.left = (np.where(leaf, itself, np.asarray(spec["left"], dtype=np.int64)) + base).ravel()
        self.right = (np.where(leaf, itself, np.asarray(spec["right"], dtype=np.int64)) + base).ravel()
        self.value = np.asarray(spec["value"], dtype=np.float64).ravel()
        self.depth = int(spec["depth"])

    def probabilities(self, rows: list[list[float]]) -> np.ndarray:
        x = np.asarray(rows, dtype=np.float64)
        n_rows = x.shape[0]
        columns = x.T.ravel()  # feature f of row r at f * n_rows + r
        row = np.arange(n_rows)
        node = np.repeat(self.roots[:, None], n_rows, axis=1)
        for _ in range(self.depth):
            go_left = columns[self.feature[node] * n_rows + row] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        raw = self.baseline + self.value[node].sum(axis=0)
        return 1.0 / (1.0 + np.exp(-np.clip(raw, -30.0, 30.0)))
