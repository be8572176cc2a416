"""Model versions per die and view on both databases: register, activate, roll back."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from castline.store import database
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

    registry.activate("D1", "top", "v2")
    registry.register("D1", "top", "models/d", manifest("v3", 0.97), activate=True)
    assert [r["version"] for r in registry.versions("D1", "top")] == ["v1", "v2", "v3"]
    assert sum(r["active"] for r in registry.versions("D1", "top")) == 1

    assert registry.rollback("D1", "top") == "v2"
    assert registry.rollback("D1", "top") == "v1"
    active = registry.active("D1", "top")
    assert active is not None and active["version"] == "v1"
    with pytest.raises(RegistryError, match="oldest"):
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
