"""Registration: each photo is moved onto the good photos' typical placement before scoring.

A cell does not place a casting in exactly the same place twice: on the impeller photos
the part moves by up to 8 % of the side, so the part's outline crosses patches where
other photos show table, and the usual distance along the rim grows with it. Inside the
graph, before the backbone, the letterboxed input's grey thumbnail (one pixel per
`STEP` x `STEP` input pixels) is correlated with a template of the part learnt at
training (the mean of the good photos' thumbnails, each moved onto the mean first); the
best of the shifts within `reach` thumbnail pixels either way moves the input (its
uncovered side filled by mirroring the photo, as `augment.moved` does). Training
extracts its patches through the same graph part, so the memory, the usual distance,
the part's region and every photo scored are in the template's frame; the heat map is
moved back onto the photo.

Only translation, in steps of `STEP` input pixels (half a patch): what the 3 x 3
neighbourhood of each patch and the memory's reach do not already absorb.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from castline.vision.graph_builder import GraphBuilder

STEP = 4  # input px per thumbnail px: a shift is found to within half a patch
REACH = 0.1  # share of the side searched either way


@dataclass(frozen=True)
class Registration:
    """The part's template (zero mean) and how far a photo may be moved onto it."""

    template: np.ndarray  # [t, t] float32, t = input size / STEP
    reach: int  # thumbnail px searched either way

    @property
    def margin(self) -> int:
        """Input px the input may move by, either way."""
        return self.reach * STEP

    def shift(self, g: GraphBuilder, x: str) -> str:
        """int64 [2]: (dy, dx) in input px, where the part lies relative to the template."""
        r, side = self.reach, 2 * self.reach + 1
        padded = g.op("Pad", [thumb(g, x), g.ints([0, 0, r, r, 0, 0, r, r])], mode="edge")
        match = g.op("Conv", [padded, g.const(self.template[None, None], "template")])
        best = g.op("ArgMax", [g.op("Reshape", [match, g.ints([-1])])], keepdims=1)
        dy = g.op("Sub", [g.op("Div", [best, g.ints([side])]), g.ints([r])])
        dx = g.op("Sub", [g.op("Mod", [best, g.ints([side])]), g.ints([r])])
        return g.op("Mul", [g.op("Concat", [dy, dx], axis=0), g.ints([STEP])], "shift")

    def move(self, g: GraphBuilder, x: str, shift: str, size: int, mode: str) -> str:
        """x [1, C, size, size] moved by -shift (mode "reflect": onto the template, the
        photo mirrored into what is uncovered) or by +shift (mode "constant": a map back
        onto the photo, zero where it has no value)."""
        m = self.margin
        padded = g.op("Pad", [x, g.ints([0, 0, m, m, 0, 0, m, m])], mode=mode)
        sign = shift if mode == "reflect" else g.op("Neg", [shift])
        starts = g.op("Add", [sign, g.ints([m, m])])
        ends = g.op("Add", [starts, g.ints([size, size])])
        return g.op("Slice", [padded, starts, ends, g.ints([2, 3])], "registered")


def thumb(g: GraphBuilder, x: str) -> str:
    """[1, 3, S, S] normalised input -> [1, 1, S / STEP, S / STEP] grey thumbnail."""
    grey = g.op("ReduceMean", [x], axes=[1], keepdims=1)
    return g.op("AveragePool", [grey], kernel_shape=[STEP, STEP], strides=[STEP, STEP])


def matches(thumb_: np.ndarray, template: np.ndarray, reach: int) -> np.ndarray:
    """What the graph's Conv gives: [2r+1, 2r+1] correlation of the template with the
    edge-padded thumbnail at each shift."""
    t = template.shape[0]
    padded = np.pad(thumb_, reach, mode="edge")
    side = 2 * reach + 1
    windows = np.lib.stride_tricks.sliding_window_view(padded, (t, t))[:side, :side]
    return np.einsum("ijkl,kl->ij", windows, template)


def best_shift(thumb_: np.ndarray, template: np.ndarray, reach: int) -> tuple[int, int]:
    """(dy, dx) in thumbnail px, as the graph's ArgMax finds it (first maximum)."""
    found = matches(thumb_, template, reach)
    dy, dx = np.unravel_index(int(np.argmax(found)), found.shape)
    return int(dy) - reach, int(dx) - reach


def moved(thumb_: np.ndarray, shift: tuple[int, int], reach: int) -> np.ndarray:
    """The thumbnail moved onto the template (edge-filled: only for the template's mean)."""
    dy, dx = shift
    t = thumb_.shape[0]
    padded = np.pad(thumb_, reach, mode="edge")
    return padded[reach + dy : reach + dy + t, reach + dx : reach + dx + t]


def fit(thumbs: list[np.ndarray], size: int, rounds: int = 3) -> tuple[Registration, np.ndarray]:
    """The template from the good photos' thumbnails, and each photo's shift onto it
    ([n, 2], input px). Each round moves every thumbnail onto the current template and
    averages them again: the outline sharpens where the photos agree."""
    reach = max(1, round(REACH * size / STEP))
    stack = np.stack(thumbs).astype(np.float32)
    template = stack.mean(axis=0)
    shifts = np.zeros((len(thumbs), 2), dtype=np.int64)
    for _ in range(rounds):
        centred = template - template.mean()
        shifts = np.asarray([best_shift(t, centred, reach) for t in stack], dtype=np.int64)
        # Keep the template at the typical placement, not wherever the first mean drifts.
        shifts -= np.round(np.median(shifts, axis=0)).astype(np.int64)
        template = np.mean(
            [moved(t, tuple(s), reach) for t, s in zip(stack, shifts, strict=True)], axis=0
        )
    template = (template - template.mean()).astype(np.float32)
    final = np.asarray([best_shift(t, template, reach) for t in stack], dtype=np.int64)
    return Registration(template, reach), final * STEP


def spread(shifts: np.ndarray, size: int) -> dict[str, float]:
    """How far the photos were moved, as a share of the side (for the manifest)."""
    length = np.abs(shifts).max(axis=1) / size if len(shifts) else np.zeros(1)
    return {
        "p50_shift_of_side": round(float(np.percentile(length, 50)), 4),
        "p90_shift_of_side": round(float(np.percentile(length, 90)), 4),
        "max_shift_of_side": round(float(length.max()), 4),
    }
