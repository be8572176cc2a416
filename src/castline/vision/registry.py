"""Model versions per die and camera view, in the store's `models` table.

At most one version is active per (die, view): the line inspects with it. Every
activation is recorded (`model_activations`); `rollback` returns to the version that was
active before the current one, so repeated rollbacks walk back through what the line ran;
`activate` can always jump to any registered version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, select, update

from castline.store import tables as t

Row = dict[str, Any]


class RegistryError(LookupError):
    """A version or die/view the registry does not know; the message says what to do."""


class ModelRegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(
        self,
        die: str,
        view: str,
        path: Path | str,
        manifest: dict[str, Any],
        metrics: dict[str, Any] | None = None,
        activate: bool = False,
    ) -> str:
        """Record a trained model; returns its version (from the manifest)."""
        version = str(manifest["version"])
        row = {
            "die": die,
            "view": view,
            "version": version,
            "path": str(path),
            "manifest": manifest,
            "metrics": metrics if metrics is not None else manifest.get("metrics", {}),
            "active": False,
            "created_at": datetime.now(UTC),
        }
        with self.engine.begin() as conn:
            if self._find(conn, die, view, version) is not None:
                raise RegistryError(f"{die}/{view} already has version {version}")
            conn.execute(t.models.insert().values(**row))
            if activate:
                self._activate(conn, die, view, version)
        return version

    def activate(self, die: str, view: str, version: str) -> None:
        with self.engine.begin() as conn:
            self._activate(conn, die, view, version)

    def rollback(self, die: str, view: str) -> str:
        """Activate the version that was active before the active one; returns it."""
        a = t.model_activations
        with self.engine.begin() as conn:
            current = self._active(conn, die, view)
            if current is None:
                raise RegistryError(f"{die}/{view} has no active model to roll back from")
            history = conn.execute(
                select(a.c.id, a.c.version)
                .where(a.c.die == die, a.c.view == view, a.c.rolled_back_at.is_(None))
                .order_by(a.c.id.desc())
            ).all()
            undone = [row.id for row in history if row.version == current["version"]]
            earlier = [row.version for row in history if row.version != current["version"]]
            if not earlier:
                raise RegistryError(
                    f"{die}/{view}: no version was active before {current['version']}; "
                    "nothing to roll back to"
                )
            conn.execute(
                update(a).where(a.c.id.in_(undone)).values(rolled_back_at=datetime.now(UTC))
            )
            self._set_active(conn, die, view, earlier[0])
            return str(earlier[0])

    def active(self, die: str, view: str) -> Row | None:
        with self.engine.connect() as conn:
            return self._active(conn, die, view)

    def versions(self, die: str, view: str) -> list[Row]:
        """All versions of a die/view, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.models).where(self._key(die, view)).order_by(t.models.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    def all(self) -> list[Row]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.models).order_by(t.models.c.die, t.models.c.view, t.models.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    @staticmethod
    def _key(die: str, view: str) -> Any:
        return and_(t.models.c.die == die, t.models.c.view == view)

    def _find(self, conn: Connection, die: str, view: str, version: str) -> Row | None:
        row = (
            conn.execute(
                select(t.models).where(self._key(die, view), t.models.c.version == version)
            )
            .mappings()
            .first()
        )
        return dict(row) if row else None

    def _active(self, conn: Connection, die: str, view: str) -> Row | None:
        row = (
            conn.execute(select(t.models).where(self._key(die, view), t.models.c.active.is_(True)))
            .mappings()
            .first()
        )
        return dict(row) if row else None

    def _activate(self, conn: Connection, die: str, view: str, version: str) -> None:
        """Make `version` the active one and record the activation."""
        if self._find(conn, die, view, version) is None:
            known = ", ".join(
                conn.execute(select(t.models.c.version).where(self._key(die, view))).scalars()
            )
            raise RegistryError(
                f"{die}/{view} has no version {version} (known: {known or 'none'}); "
                "register it first with `castline vision register`"
            )
        current = self._active(conn, die, view)
        if current is not None and current["version"] == version:
            return
        conn.execute(
            t.model_activations.insert().values(
                die=die, view=view, version=version, activated_at=datetime.now(UTC)
            )
        )
        self._set_active(conn, die, view, version)

    def _set_active(self, conn: Connection, die: str, view: str, version: str) -> None:
        conn.execute(update(t.models).where(self._key(die, view)).values(active=False))
        conn.execute(
            update(t.models)
            .where(self._key(die, view), t.models.c.version == version)
            .values(active=True)
        )
