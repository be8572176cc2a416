"""The dashboard's window on castline.analytics (SPC, KPIs, benefit report).

The analytics package computes; the dashboard only shows. Until it is installed, the
pages that need it say so instead of computing a second, different answer here.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def service() -> ModuleType | None:
    try:
        return importlib.import_module("castline.analytics.service")
    except ImportError:
        return None
