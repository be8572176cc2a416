"""Defect catalogue of aluminium high-pressure die castings, and their usual causes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DefectType:
    code: str
    name: str
    description: str
    usual_causes: tuple[str, ...]  # process parameter names or conditions


DEFAULT_CATALOGUE: tuple[DefectType, ...] = (
    DefectType(
        "gas_porosity",
        "gas porosity",
        "round smooth-walled voids from trapped air or gas",
        ("fast_shot_velocity_mps", "vacuum_mbar", "spray_time_s"),
    ),
    DefectType(
        "shrinkage_porosity",
        "shrinkage porosity",
        "jagged voids where metal shrank unfed",
        ("intensification_pressure_bar", "biscuit_thickness_mm", "die_temp_fixed_c"),
    ),
    DefectType(
        "cold_shut",
        "cold shut",
        "two fronts of metal that met too cold to fuse",
        ("melt_temp_c", "die_temp_fixed_c", "die_temp_moving_c"),
    ),
    DefectType(
        "misrun",
        "misrun",
        "cavity not filled: the metal froze first",
        ("melt_temp_c", "die_temp_moving_c", "fast_shot_velocity_mps"),
    ),
    DefectType(
        "flash",
        "flash",
        "thin fin of metal at the parting line",
        ("die_wear", "intensification_pressure_bar"),
    ),
    DefectType(
        "crack",
        "crack or hot tear",
        "fracture from stress during solidification",
        ("die_damage", "die_temp_fixed_c"),
    ),
    DefectType(
        "soldering",
        "soldering",
        "metal welded to the die surface, torn on ejection",
        ("die_temp_fixed_c", "spray_time_s"),
    ),
    DefectType(
        "blister", "blister", "raised bubble of gas under the skin", ("vacuum_mbar", "spray_time_s")
    ),
    DefectType("inclusion", "inclusion", "oxide or foreign matter in the metal", ("melt_temp_c",)),
    DefectType("die_mark", "die mark", "imprint of damage on the die surface", ("die_damage",)),
)


class DefectCatalogue:
    """The defect types a plant uses; configurable, the default covers HPDC aluminium."""

    def __init__(self, types: tuple[DefectType, ...] = DEFAULT_CATALOGUE) -> None:
        self._by_code = {t.code: t for t in types}

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[DefectType]:
        return iter(self._by_code.values())

    def get(self, code: str) -> DefectType:
        try:
            return self._by_code[code]
        except KeyError:
            known = ", ".join(self._by_code)
            raise KeyError(f"unknown defect type {code!r}; known: {known}") from None

    def causes_of(self, code: str) -> tuple[str, ...]:
        return self.get(code).usual_causes
