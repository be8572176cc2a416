"""castline's OPC UA information model of a die-casting machine (docs/protocol.md).

Shared by the simulated machine servers and the line's OPC UA client, so both read the
same names. There is no published die-casting companion specification; the model
borrows the injection-moulding ideas (cycle parameters event, mould cycle counter,
ISO 22400 state mapping).
"""

NAMESPACE = "urn:castline:die-casting-machine"
EVENT_TYPE = "CycleParametersEventType"
MACHINE = "Machine"
SHOT_NUMBER = "Machine.LastCycle.ShotNumber"
STATE = "Machine.State"
DIE_CODE = "Machine.Die.DieCode"
MACHINE_ID = "Machine.MachineId"
PLANT = "Machine.Plant"
