"""State-changing actions of the dashboard; each writes its audit-log row.

The API and the pages call the same functions, so a review confirmed by a script and one
confirmed in the browser are recorded alike.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from castline.analytics import downtime
from castline.domain.alarms import CAUSES
from castline.domain.defects import DefectCatalogue
from castline.domain.ids import valid_id
from castline.domain.shot import PartKey
from castline.domain.stops import StopClass
from castline.domain.verdict import Verdict
from castline.messaging.schema import DownstreamMessage
from castline.store import alarms as stored_alarms
from castline.store import downstream
from castline.store.downstream import Recorded
from castline.store.repository import Store
from castline.vision.registry import ModelRegistry, RegistryError
from castline.vision.review_learning import Learnt
from castline.web import queries
from castline.web.auth import (
    IssuedKey,
    Principal,
    Role,
    add_user,
    audit,
    issue_key,
    revoke_key,
    revoke_keys,
)


class ActionError(ValueError):
    """The action cannot be done; the message says why and what to do."""

    def __init__(self, message: str, status: int = 400, code: str = "", **fields: object) -> None:
        super().__init__(message)
        self.status = status
        # The refusal's id, so a page says it in its language (`refusal.<code>` in
        # web/refusal_words.py); the API answers the English message.
        self.code = code
        self.fields = fields


class NeedsConfirmation(ActionError):
    """The action overrides what castline decided: a person confirms it, with a reason."""


def review_part(
    engine: Engine,
    who: Principal,
    key: PartKey,
    decision: str,
    defect_type: str | None,
    comment: str = "",
    catalogue: DefectCatalogue | None = None,
    confirmed: bool = False,
) -> None:
    """A person confirms a part as OK or NG (naming the defect): a label for retraining."""
    if not who.sees(key.plant):
        raise ActionError(f"part {key} not found", 404, "no_part", key=key)
    try:
        verdict = Verdict(decision.upper())
    except ValueError:
        raise ActionError("decision must be OK or NG", code="decision") from None
    if verdict not in (Verdict.OK, Verdict.NG):
        raise ActionError("decision must be OK or NG", code="decision")
    defect_type = defect_type or None
    if verdict is Verdict.NG:
        if defect_type is None:
            raise ActionError("name the defect type of an NG part", code="ng_needs_defect")
        if defect_type not in (catalogue or DefectCatalogue()):
            raise ActionError(
                f"unknown defect type {defect_type!r}: pick one from the catalogue",
                code="unknown_defect",
                defect=defect_type,
            )
    else:
        defect_type = None
    store = Store(engine)
    part = store.part(key)
    if part is None:
        raise ActionError(f"part {key} not found", 404, "no_part", key=key)
    if part.get("review"):
        raise ActionError(f"part {key} was reviewed already", 409, "reviewed", key=key)
    decided = (part.get("verdict") or {}).get("verdict")
    if verdict is Verdict.OK and decided in (Verdict.NG, Verdict.QUARANTINE):
        _check_override(key, decided, comment, confirmed)
    if not store.record_review(key, verdict, who.username, datetime.now(UTC), defect_type, comment):
        raise ActionError(f"part {key} was reviewed already", 409, "reviewed", key=key)
    detail = {"decision": verdict.value, "defect": defect_type}
    audit(engine, who.username, "review", str(key), detail, [key.plant])


def post_downstream(engine: Engine, who: Principal, message: DownstreamMessage) -> Recorded:
    """A downstream station's result, posted by a person or a station's API key: kept as
    it would be from the broker, joined to its part when known, audited."""
    if not who.sees(message.plant):
        raise ActionError(
            f"you have no access to plant {message.plant!r}", 403, "no_plant", plant=message.plant
        )
    result = message.to_result()
    done = downstream.record(engine, result, datetime.now(UTC), f"api:{who.username}")
    detail: dict[str, object] = {"station": result.station, "test": result.test}
    detail["result"] = result.result
    detail |= {"part": str(done.part) if done.part else None, "new": done.new}
    audit(engine, who.username, "downstream.post", str(result.part), detail, [result.plant])
    return done


def _check_override(key: PartKey, decided: str, comment: str, confirmed: bool) -> None:
    """Passing a part castline held is a person's decision, made knowingly: it needs a
    reason and a second click."""
    if not comment.strip():
        raise NeedsConfirmation(f"castline judged part {key} {decided}: say why it is OK")
    if not confirmed:
        raise NeedsConfirmation(f"castline judged part {key} {decided}: confirm it is OK")


def acknowledge(engine: Engine, who: Principal, alarm_id: int, cause: str, comment: str) -> None:
    """A person names the cause (one of the plant's causes and a sentence): the alarm is
    acknowledged and closed; a report of the same condition later opens a new one."""
    alarm = queries.alarm(engine, alarm_id)
    if alarm is None or not who.sees(alarm["plant"]):
        raise ActionError(f"alarm {alarm_id} not found", 404, "no_alarm", alarm=alarm_id)
    if cause not in CAUSES:
        raise ActionError(f"name the cause: one of {', '.join(CAUSES)}", code="name_cause")
    if not comment.strip():
        raise ActionError("say what caused it and what was done in the comment", code="say_cause")
    if alarm["acked_at"] is not None:
        raise ActionError(
            f"alarm {alarm_id} was acknowledged already", 409, "acked", alarm=alarm_id
        )
    if not stored_alarms.close_with_cause(engine, alarm_id, who.username, cause, comment):
        raise ActionError(
            f"alarm {alarm_id} is cleared: nothing to acknowledge", 409, "cleared", alarm=alarm_id
        )
    detail = {"cause": cause, "comment": comment.strip()}
    audit(engine, who.username, "alarm.ack", f"alarm/{alarm_id}", detail, [alarm["plant"]])


def promote(engine: Engine, who: Principal, model_id: int) -> dict[str, object]:
    """Make a model version the active one for its die and view."""
    model = queries.model(engine, model_id)
    if model is None:
        raise ActionError(f"model {model_id} not found", 404, "no_model", model=model_id)
    try:
        ModelRegistry(engine).activate(model["die"], model["view"], model["version"])
    except RegistryError as exc:
        raise ActionError(str(exc), 404) from None
    target = f"{model['die']}/{model['view']}"
    detail = {"version": model["version"]}
    audit(
        engine,
        who.username,
        "model.promote",
        target,
        detail,
        queries.die_plants(engine, str(model["die"])),
    )
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
    audit(
        engine,
        who.username,
        "model.rollback",
        f"{die}/{view}",
        detail,
        queries.die_plants(engine, die),
    )
    return {"die": die, "view": view, "version": version}


def learnt_from_reviews(engine: Engine, learnt: Learnt) -> None:
    """The review loop made and activated a version: audited like a person's promotion."""
    detail = {"version": learnt.version, "from": learnt.parent, "photos": learnt.good}
    detail["defects_listed"] = learnt.defects
    detail["head_refitted"] = learnt.head  # confirmed defects refitted (or made) the head
    target = f"{learnt.die}/{learnt.view}"
    plants = queries.die_plants(engine, learnt.die)
    audit(engine, "castline", "model.learn", target, detail, plants)


def create_user(
    engine: Engine, who: Principal, username: str, password: str, role: str, plants: list[str]
) -> None:
    """A new user; a plant-scoped admin may only make users of (some of) its own plants."""
    if len(password) < 10:
        raise ActionError("a password needs at least 10 characters", code="short_password")
    bad = [p for p in plants if not valid_id(p)]
    if bad:
        raise ActionError(
            f"not a plant id: {bad[0]!r} (letters, digits, '_' and '-')",
            code="plant_id",
            plant=bad[0],
        )
    if not who.covers(plants):
        mine = ", ".join(who.plants)
        raise ActionError(
            f"you manage users of plants {mine} only: name some of them",
            403,
            "your_plants",
            plants=mine,
        )
    try:
        add_user(engine, username, password, Role.of(role), plants)
    except ValueError as exc:
        exists = "exists" in str(exc)
        code = "user_exists" if exists else ""
        raise ActionError(str(exc), 409 if exists else 400, code, user=username) from None
    audit(engine, who.username, "user.add", username, {"role": role, "plants": plants}, plants)


def create_key(engine: Engine, who: Principal, username: str, name: str = "") -> IssuedKey:
    """A new API key: only its user makes one (nobody else ever sees a user's key)."""
    if username != who.username:
        raise ActionError("an API key is created by its own user only", 403, "own_key")
    try:
        issued = issue_key(engine, username, name)
    except ValueError as exc:
        raise ActionError(str(exc), 404) from None
    audit(engine, who.username, "key.add", username, {"name": issued.name}, who.plants)
    return issued


def managed_user(engine: Engine, who: Principal, username: str) -> Principal:
    """A user whose keys `who` may revoke: itself, or, for an admin, a user within its
    plants. Anyone else is not found (a scoped admin does not learn of other plants' users)."""
    target = queries.user(engine, username)
    if target is not None and username == who.username:
        return target
    if who.role < Role.ADMIN:
        raise ActionError("only an admin revokes the keys of another user", 403, "admin_revokes")
    if target is None or not who.covers(target.plants):
        raise ActionError(f"no user {username!r}", 404, "no_user", user=username)
    return target


def revoke(engine: Engine, who: Principal, username: str) -> int:
    """Revoke every key of a user (its own, or an admin's user within its plants)."""
    target = managed_user(engine, who, username)
    try:
        revoked = revoke_keys(engine, username)
    except ValueError as exc:
        raise ActionError(str(exc), 404) from None
    audit(engine, who.username, "key.revoke", username, {"keys": revoked}, target.plants)
    return revoked


def revoke_own(engine: Engine, who: Principal, key_id: int) -> None:
    if not revoke_key(engine, who.user_id, key_id):
        raise ActionError(f"you have no live API key {key_id}", 404, "no_key", key=key_id)
    audit(engine, who.username, "key.revoke", who.username, {"key": key_id}, who.plants)


def classify_stop(
    engine: Engine,
    who: Principal,
    plant: str,
    machine: str,
    started_at: datetime,
    stop_class: str,
    reason: str,
) -> dict[str, object]:
    """A person says why a machine stood (or corrects what the machine said)."""
    if not who.sees(plant):
        raise ActionError(f"plant {plant} not found", 404, "no_plant", plant=plant)
    if started_at.tzinfo is None:
        raise ActionError("give the stop's start with its zone (as listed)", code="stop_zone")
    try:
        cls = StopClass.of(stop_class)
    except ValueError as exc:
        raise ActionError(str(exc)) from None
    reason = reason.strip()
    if cls is not StopClass.PLANNED and not reason:
        raise ActionError("say what happened (the reason)", code="stop_reason")
    if len(reason) > 500:
        raise ActionError("the reason is longer than 500 characters", code="long_reason")
    try:
        downtime.classify(engine, plant, machine, started_at, cls, reason, who.username)
    except LookupError as exc:
        raise ActionError(str(exc), 404) from None
    target = f"{plant}/{machine}/stop/{started_at.isoformat()}"
    detail = {"class": cls.value, "reason": reason}
    audit(engine, who.username, "stop.classify", target, detail, [plant])
    return {"machine": machine, "started_at": started_at, "stop_class": cls.value}
