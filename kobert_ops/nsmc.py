"""Labelling rules that turn Naver movie-review star ratings (1-10) into sentiment classes.

`binary` is the NSMC rule (Lucy Park's e9t/nsmc): 1-4 stars negative, 9-10 positive, 5-8 left out because
middling ratings are too often ambiguous in text. `ternary` keeps that middle band as a neutral class, so the
same pipeline can be shown to train and evaluate more than two classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RatingScheme:
    """Label names in id order and the inclusive rating range of each."""

    labels: tuple[str, ...]
    ranges: tuple[tuple[int, int], ...]

    def label_of(self, ratings) -> np.ndarray:
        """Label id per rating, -1 where the scheme leaves the rating out (or it is null/out of 1-10)."""
        ratings = np.asarray(ratings, dtype=np.float64)
        labels = np.full(ratings.shape, -1, dtype=np.int64)
        for label_id, (low, high) in enumerate(self.ranges):
            labels[(ratings >= low) & (ratings <= high)] = label_id
        return labels


SCHEMES: dict[str, RatingScheme] = {
    "binary": RatingScheme(labels=("부정", "긍정"), ranges=((1, 4), (9, 10))),
    "ternary": RatingScheme(labels=("부정", "중립", "긍정"), ranges=((1, 4), (5, 8), (9, 10))),
}


def scheme(name: str) -> RatingScheme:
    if name not in SCHEMES:
        raise ValueError(f"unknown labelling scheme {name!r}; choose one of {sorted(SCHEMES)}")
    return SCHEMES[name]
