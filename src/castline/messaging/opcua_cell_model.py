"""Node names of castline's OPC UA verdict handshake for robot-cell PLCs (docs/protocol.md).

One object per machine's robot cell under `RobotCells`, string node ids
`RobotCells.<machine>.<name>` in the namespace `NAMESPACE`. Kept apart from the server so a
PLC test, a tool or the docs name the same nodes.
"""

from __future__ import annotations

from castline.domain.verdict import Verdict

NAMESPACE = "urn:castline:robot-cell"
FOLDER = "RobotCells"

# Written by the PLC.
PART_PRESENT = "PartPresent"  # Boolean: a part is in the cell; its rising edge asks
SHOT_NUMBER = "ShotNumber"  # UInt64: the part asked for, written before or with PartPresent
RESULT_ACKNOWLEDGED = "ResultAcknowledged"  # Boolean: True takes the result away

# Written by castline (read-only for clients).
MACHINE_ID = "MachineId"  # String
PLANT = "Plant"  # String
DEADLINE_S = "DeadlineSeconds"  # Double: from PartPresent to the fail-safe QUARANTINE
BUSY = "Busy"  # Boolean: a request is accepted and waits for its verdict
RESULT_READY = "ResultReady"  # Boolean: set last, after the result nodes below
RESULT_SHOT_NUMBER = "ResultShotNumber"  # UInt64: the part the result is for
VERDICT = "Verdict"  # String: OK, NG, REVIEW or QUARANTINE ("" before the first result)
VERDICT_CODE = "VerdictCode"  # Int16: VERDICT_CODES, 0 before the first result
REASON = "Reason"  # String: why (castline's reason of the verdict)
ERROR = "Error"  # Boolean: the last request was refused; ErrorText says why
ERROR_TEXT = "ErrorText"  # String

PLC_WRITES = (SHOT_NUMBER, RESULT_ACKNOWLEDGED, PART_PRESENT)  # the order a batch is applied

# PLCs compare integers more readily than strings; 0 means "no verdict".
VERDICT_CODES = {Verdict.OK: 1, Verdict.NG: 2, Verdict.REVIEW: 3, Verdict.QUARANTINE: 4}


def node_id(machine: str, name: str) -> str:
    return f"{FOLDER}.{machine}.{name}"
