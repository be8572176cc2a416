"""Why a machine stood: the class of a stop, for downtime and reliability figures.

A stop is a machine state other than running. Its class says what it costs and who
answers for it: a breakdown (maintenance; the only class MTBF and MTTR count), a setup
such as a die change (production engineering), a planned stop (a break, planned
maintenance: outside planned busy time), no order (planning), or unclassified (nobody
has said yet). The machine's own state gives the first class; a person can correct it.
"""

from __future__ import annotations

from enum import StrEnum

from castline.domain.states import MachineState


class StopClass(StrEnum):
    BREAKDOWN = "breakdown"
    SETUP = "setup"  # die change, die repair, warm-up
    PLANNED = "planned"  # breaks, planned maintenance
    NO_ORDER = "no_order"  # nothing to cast
    UNCLASSIFIED = "unclassified"

    @classmethod
    def of(cls, text: str) -> StopClass:
        try:
            return cls(text.strip().lower().replace(" ", "_"))
        except ValueError:
            known = ", ".join(c.value for c in cls)
            raise ValueError(f"unknown stop class {text!r}; classes: {known}") from None


# Said by the machine or its MES in the state's reason: an idle machine without an order.
NO_ORDER_REASONS = ("no order", "no orders", "without order")


def class_of_state(state: str, reason: str = "") -> StopClass | None:
    """The class a machine state gives its stop (None: the machine is running).

    `offline` (no connection, and what an import records for a gap between shots) is
    unclassified, not a breakdown: nobody knows why the machine was silent. `idle` is
    no order only when the source says so in its reason; waiting for metal or an operator
    stays unclassified until a person says which it was.
    """
    try:
        known = MachineState(state)
    except ValueError:
        return StopClass.UNCLASSIFIED
    if known is MachineState.RUNNING:
        return None
    if known is MachineState.IDLE:
        said = reason.strip().lower()
        return StopClass.NO_ORDER if said.startswith(NO_ORDER_REASONS) else StopClass.UNCLASSIFIED
    return _BY_STATE.get(known, StopClass.UNCLASSIFIED)


_BY_STATE = {
    MachineState.BREAKDOWN: StopClass.BREAKDOWN,
    MachineState.SETUP: StopClass.SETUP,
    MachineState.PLANNED_STOP: StopClass.PLANNED,
}
