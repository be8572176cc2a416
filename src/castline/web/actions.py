"""State-changing actions of the dashboard; each writes its audit-log row.

The API and the pages call the same functions, so a review confirmed by a script and one
confirmed in the browser are recorded alike.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select, update

from castline.analytics import service
from castline.domain.defects import DefectCatalogue
from castline.domain.shot import PartKey
from castline.domain.verdict import Verdict
from castline.store import tables as t
from castline.store.repository import Store
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
    _activate(engine, model["die"], model["view"], model_id)
    audit(
        engine,
        who.username,
        "model.promote",
        f"{model['die']}/{model['view']}",
        {"version": model["version"]},
    )
    return model


def rollback(engine: Engine, who: Principal, die: str, view: str) -> dict[str, object]:
    """Go back to the version registered before the active one."""
    m = t.models
    with engine.connect() as conn:
        versions = conn.execute(
            select(m.c.id, m.c.version, m.c.active)
            .where(m.c.die == die, m.c.view == view)
            .order_by(m.c.created_at.desc(), m.c.id.desc())
        ).all()
    active = [i for i, row in enumerate(versions) if row.active]
    if not active:
        raise ActionError(f"no active model for die {die} view {view}: promote one first")
    if active[0] + 1 >= len(versions):
        raise ActionError(
            f"the active model of {die}/{view} is the oldest: nothing to roll back to"
        )
    previous = versions[active[0] + 1]
    _activate(engine, die, view, previous.id)
    audit(
        engine,
        who.username,
        "model.rollback",
        f"{die}/{view}",
        {"from": versions[active[0]].version, "to": previous.version},
    )
    return {"die": die, "view": view, "version": previous.version}


def _activate(engine: Engine, die: str, view: str, model_id: int) -> None:
    m = t.models
    with engine.begin() as conn:  # one transaction: never two active models
        conn.execute(update(m).where(m.c.die == die, m.c.view == view).values(active=False))
        conn.execute(update(m).where(m.c.id == model_id).values(active=True))


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
