"""State-changing actions of the dashboard; each writes its audit-log row.

The API and the pages call the same functions, so a review confirmed by a script and one
confirmed in the browser are recorded alike.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from castline.analytics import service
from castline.domain.defects import DefectCatalogue
from castline.domain.shot import PartKey
from castline.domain.verdict import Verdict
from castline.store.repository import Store
from castline.vision.registry import ModelRegistry, RegistryError
from castline.web import queries
from castline.web.auth import Principal, Role, add_user, audit, new_api_key, revoke_keys


class ActionError(ValueError):
    """The action cannot be done; the message says why and what to do."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def review_part(
    engine: Engine,
    who: Principal,
    key: PartKey,
    decision: str,
    defect_type: str | None,
    comment: str = "",
    catalogue: DefectCatalogue | None = None,
) -> None:
    """A person confirms a part as OK or NG (naming the defect): a label for retraining."""
    if not who.sees(key.plant):
        raise ActionError(f"part {key} not found", 404)
    try:
        verdict = Verdict(decision.upper())
    except ValueError:
        raise ActionError("decision must be OK or NG") from None
    if verdict not in (Verdict.OK, Verdict.NG):
        raise ActionError("decision must be OK or NG")
    defect_type = defect_type or None
    if verdict is Verdict.NG:
        if defect_type is None:
            raise ActionError("name the defect type of an NG part")
        if defect_type not in (catalogue or DefectCatalogue()):
            raise ActionError(f"unknown defect type {defect_type!r}: pick one from the catalogue")
    else:
        defect_type = None
    store = Store(engine)
    if store.part(key) is None:
        raise ActionError(f"part {key} not found", 404)
    if not store.record_review(key, verdict, who.username, datetime.now(UTC), defect_type, comment):
        raise ActionError(f"part {key} was reviewed already", 409)
    audit(
        engine, who.username, "review", str(key), {"decision": verdict.value, "defect": defect_type}
    )


def acknowledge(engine: Engine, who: Principal, alarm_id: int, comment: str) -> None:
    alarm = queries.alarm(engine, alarm_id)
    if alarm is None or not who.sees(alarm["plant"]):
        raise ActionError(f"alarm {alarm_id} not found", 404)
    if not comment.strip():
        raise ActionError("say what was done in the comment")
    if alarm["acked_at"] is not None:
        raise ActionError(f"alarm {alarm_id} was acknowledged already", 409)
    if not service.acknowledge_alarm(engine, alarm_id, who.username, comment.strip()):
        raise ActionError(f"alarm {alarm_id} is cleared: nothing to acknowledge", 409)
    audit(engine, who.username, "alarm.ack", f"alarm/{alarm_id}", {"comment": comment.strip()})


def promote(engine: Engine, who: Principal, model_id: int) -> dict[str, object]:
    """Make a model version the active one for its die and view."""
    model = queries.model(engine, model_id)
    if model is None:
        raise ActionError(f"model {model_id} not found", 404)
    try:
        ModelRegistry(engine).activate(model["die"], model["view"], model["version"])
    except RegistryError as exc:
        raise ActionError(str(exc), 404) from None
    target = f"{model['die']}/{model['view']}"
    audit(engine, who.username, "model.promote", target, {"version": model["version"]})
    return model


def rollback(engine: Engine, who: Principal, die: str, view: str) -> dict[str, object]:
    """Go back to the version registered before the active one."""
    registry = ModelRegistry(engine)
    current = registry.active(die, view)
    try:
        version = registry.rollback(die, view)
    except RegistryError as exc:
        raise ActionError(str(exc)) from None
    detail = {"from": current["version"] if current else None, "to": version}
    audit(engine, who.username, "model.rollback", f"{die}/{view}", detail)
    return {"die": die, "view": view, "version": version}


def create_user(
    engine: Engine, who: Principal, username: str, password: str, role: str, plants: list[str]
) -> None:
    if len(password) < 10:
        raise ActionError("a password needs at least 10 characters")
    try:
        add_user(engine, username, password, Role.of(role), plants)
    except ValueError as exc:
        raise ActionError(str(exc), 409 if "exists" in str(exc) else 400) from None
    audit(engine, who.username, "user.add", username, {"role": role, "plants": plants})


def create_key(engine: Engine, who: Principal, username: str, name: str = "") -> str:
    try:
        key = new_api_key(engine, username, name)
    except ValueError as exc:
        raise ActionError(str(exc), 404) from None
    audit(engine, who.username, "key.add", username, {"name": name})
    return key


def revoke(engine: Engine, who: Principal, username: str) -> int:
    try:
        revoked = revoke_keys(engine, username)
    except ValueError as exc:
        raise ActionError(str(exc), 404) from None
    audit(engine, who.username, "key.revoke", username, {"keys": revoked})
    return revoked
