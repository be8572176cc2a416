"""Why a simulated casting is defective: causal rules from the process state of its shot.

Every rule turns a condition of the shot into a probability of one defect type. All rules
draw their chance every shot (so the random stream does not depend on which fire); when
several fire, the most likely cause wins and names the defect. Deviations are measured in
the die's calibrated standard deviations (z), so the rules hold for every die.

| condition                                   | defect                 | probability            |
|---------------------------------------------|------------------------|------------------------|
| cold melt or cold die, coldness k = -z > 2  | cold_shut (misrun k>3) | 0.15 (k - 2), max 0.6  |
| fast-shot velocity off, abs(z) > 2.5        | gas_porosity           | 0.1 (abs(z)-2.5), <0.4 |
| lost vacuum, vacuum above 200 mbar          | gas_porosity           | 0.30                   |
| weak intensification, pressure z < -2       | shrinkage_porosity     | 0.20 (-z - 2), max 0.6 |
| hot melt, melt z > 2.5                      | soldering              | 0.05 (z - 2.5), max 0.2 |
| worn die, life used u > 0.8                 | flash                  | 0.20 (u - 0.8), max 0.3 |
| damaged die (until maintenance)             | die_mark / crack       | 0.12 / 0.04            |
| anything else                               | mixed types            | the base rate          |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from castline.sim.process import ProcessModel

# Defects that happen anyway (inclusions, blisters...), by relative weight.
BASE_TYPES: dict[str, float] = {
    "gas_porosity": 3,
    "inclusion": 2,
    "shrinkage_porosity": 2,
    "blister": 1,
    "soldering": 1,
    "cold_shut": 1,
}
LOST_VACUUM_MBAR = 200.0


@dataclass(frozen=True, slots=True)
class Truth:
    """The ground truth of a casting."""

    defective: bool
    defect_type: str | None = None
    cause: str = ""


@dataclass(frozen=True, slots=True)
class DieCondition:
    life_used: float  # shot counter / rated life
    damaged: bool


def judge(
    process: ProcessModel,
    true: dict[str, float],
    die: DieCondition,
    base_rate: float,
    rng: np.random.Generator,
) -> Truth:
    """The defect, if any, of the casting made by a shot with these true parameters."""
    hazards = _hazards(process, true, die)
    draws = rng.random(len(hazards) + 2)
    fired = [h for h, u in zip(hazards, draws, strict=False) if u < h[1]]
    if fired:
        code, _, cause = max(fired, key=lambda h: h[1])
        return Truth(True, code, cause)
    if draws[-2] < base_rate:
        weights = np.array(list(BASE_TYPES.values()), dtype=float)
        index = int(np.searchsorted(np.cumsum(weights) / weights.sum(), draws[-1]))
        return Truth(True, list(BASE_TYPES)[index], "base rate")
    return Truth(False)


def _hazards(
    process: ProcessModel, true: dict[str, float], die: DieCondition
) -> list[tuple[str, float, str]]:
    z = {name: process.z(name, value) for name, value in true.items()}
    melt_cold = -z["melt_temp_c"]
    die_cold = -min(z["die_temp_fixed_c"], z["die_temp_moving_c"])
    cold = max(melt_cold, die_cold)
    where = "melt" if melt_cold >= die_cold else "die"
    velocity = abs(z["fast_shot_velocity_mps"])
    return [
        (
            "misrun" if cold > 3 else "cold_shut",
            _ramp(0.15, cold - 2, 0.6),
            f"cold {where}: {cold:.1f} sd below the die's mean",
        ),
        (
            "gas_porosity",
            _ramp(0.10, velocity - 2.5, 0.4),
            f"fast-shot velocity {velocity:.1f} sd off",
        ),
        (
            "gas_porosity",
            0.3 if true["vacuum_mbar"] > LOST_VACUUM_MBAR else 0.0,
            f"lost vacuum: {true['vacuum_mbar']:.0f} mbar",
        ),
        (
            "shrinkage_porosity",
            _ramp(0.20, -z["intensification_pressure_bar"] - 2, 0.6),
            "weak intensification pressure",
        ),
        ("soldering", _ramp(0.05, z["melt_temp_c"] - 2.5, 0.2), "hot melt"),
        ("flash", _ramp(0.20, die.life_used - 0.8, 0.3), f"worn die: {die.life_used:.0%} of life"),
        ("die_mark", 0.12 if die.damaged else 0.0, "damaged die"),
        ("crack", 0.04 if die.damaged else 0.0, "damaged die"),
    ]


def _ramp(slope: float, excess: float, cap: float) -> float:
    return min(cap, slope * excess) if excess > 0 else 0.0
