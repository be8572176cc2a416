"""Model versions per die and view on both databases: register, activate, roll back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect

from castline.store import database
from castline.store import tables as t
from castline.vision.registry import ModelRegistry, RegistryError


def manifest(version: str, auroc: float) -> dict[str, object]:
    return {"version": version, "backbone": "lite0", "metrics": {"val": {"image_auroc": auroc}}}


def test_register_activate_and_roll_back(engine: Engine) -> None:
    database.upgrade(engine)
    registry = ModelRegistry(engine)
    assert registry.active("D1", "top") is None
    registry.register("D1", "top", "models/a", manifest("v1", 0.9), activate=True)
    registry.register("D1", "top", "models/b", manifest("v2", 0.95))
    registry.register("D1", "side", "models/c", manifest("v1", 0.8), activate=True)
    active = registry.active("D1", "top")
    assert active is not None and active["version"] == "v1"
    assert active["metrics"] == {"val": {"image_auroc": 0.9}}

    registry.register("D1", "top", "models/d", manifest("v3", 0.97), activate=True)
    registry.activate("D1", "top", "v2")  # active in turn: v1, v3, v2
    assert [r["version"] for r in registry.versions("D1", "top")] == ["v1", "v2", "v3"]
    assert sum(r["active"] for r in registry.versions("D1", "top")) == 1

    # Back to what was active before, not to what was registered before.
    assert registry.rollback("D1", "top") == "v3"
    assert registry.rollback("D1", "top") == "v1"
    active = registry.active("D1", "top")
    assert active is not None and active["version"] == "v1"
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback("D1", "top")
    side = registry.active("D1", "side")  # other views are untouched
    assert side is not None and side["version"] == "v1"


def test_unknown_versions_and_duplicates_are_refused(engine: Engine) -> None:
    database.upgrade(engine)
    registry = ModelRegistry(engine)
    registry.register("D2", "top", "models/a", manifest("v1", 0.9))
    with pytest.raises(RegistryError, match="no version v9"):
        registry.activate("D2", "top", "v9")
    with pytest.raises(RegistryError, match="already has"):
        registry.register("D2", "top", "models/a", manifest("v1", 0.9))
    with pytest.raises(RegistryError, match="no active model"):
        registry.rollback("D2", "top")


def test_migration_0002_starts_the_history_with_the_active_versions(engine: Engine) -> None:
    database.upgrade(engine, "0001")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for version, active in (("v1", False), ("v2", True)):
            row = {"die": "D3", "view": "top", "version": version, "path": "m", "manifest": {}}
            conn.execute(t.models.insert().values(**row, metrics={}, active=active, created_at=now))
    database.upgrade(engine)
    registry = ModelRegistry(engine)
    registry.activate("D3", "top", "v1")
    assert registry.rollback("D3", "top") == "v2"
    database.downgrade(engine, "0001")
    assert "model_activations" not in inspect(engine).get_table_names()
    database.upgrade(engine)
    assert database.current(engine) == database.head()
