"""Root cause within each die: a die mix does not pose as a process cause."""

from __future__ import annotations

import numpy as np
import pandas as pd

from castline.analytics import rootcause


def two_dies(n: int = 3000, seed: int = 7) -> pd.DataFrame:
    """Die A runs cold and scraps 10 % whatever its melt; die B runs hot and scraps 1 %.
    Within die A, a low cast pressure is the real cause."""
    rng = np.random.default_rng(seed)
    pressure = rng.normal(320, 10, n)
    a = pd.DataFrame(
        {
            "die": "A",
            "melt_temp_c": rng.normal(680, 3, n),
            "intensification_pressure_bar": pressure,
            "ng": (rng.random(n) < np.where(pressure < 305, 0.4, 0.05)).astype(float),
        }
    )
    b = pd.DataFrame(
        {
            "die": "B",
            "melt_temp_c": rng.normal(720, 3, n),
            "intensification_pressure_bar": rng.normal(320, 10, n),
            "ng": (rng.random(n) < 0.01).astype(float),
        }
    )
    return pd.concat([a, b], ignore_index=True)


def test_pooled_dies_invent_a_cause_that_each_die_lacks() -> None:
    frame = two_dies()
    pooled = {f.parameter: f for f in rootcause.rank(frame)}
    assert pooled["melt_temp_c"].significant and pooled["melt_temp_c"].die is None
    within = rootcause.per_die(frame)
    melt = [f for f in within if f.parameter == "melt_temp_c" and f.significant]
    assert melt == []  # inside each die the melt does not matter
    top = within[0]
    assert (top.die, top.parameter, top.side) == ("A", "intensification_pressure_bar", "<")
    assert top.significant and top.text.startswith("die A: NG rate")
