"""Issue #14, item 7: every answer of the API has a schema; issue #12: /docs needs no CDN."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from .conftest import Plant, as_user

Seeded = tuple[FastAPI, Plant]
BINARY = {"type": "string", "format": "binary"}


def resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def untyped(schema: dict[str, Any], spec: dict[str, Any]) -> str | None:
    """Why a response schema says nothing about the answer, or None when it is typed."""
    schema = resolve(schema, spec)
    if schema.get("type") == "array":
        return untyped(schema.get("items", {}), spec)
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties")
        return None if props else "an object without properties"
    return "no schema" if not schema else f"not an object: {schema}"


def test_every_api_answer_has_a_typed_schema(client: TestClient, plant: Seeded) -> None:
    spec = client.get("/api/v1/openapi.json", headers=as_user(plant[1], "viewer")).json()
    checked, problems = 0, []
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                for media, content in answer.get("content", {}).items():
                    schema = content.get("schema", {})
                    checked += 1
                    if media.startswith("image/"):
                        why = None if schema == BINARY else f"image schema {schema}"
                    elif media == "text/event-stream":
                        why = None if schema.get("type") == "string" else "no stream schema"
                    else:
                        why = untyped(schema, spec)
                    if why:
                        problems.append(f"{method.upper()} {path} {status} {media}: {why}")
    assert problems == []
    assert checked >= 40  # every route was seen


def test_answers_follow_their_schemas_field_for_field(client: TestClient, plant: Seeded) -> None:
    """Undeclared fields are refused (the models forbid extras), so a typed answer that
    arrives at all matches its schema; spot-check that nothing was dropped on the way."""
    viewer = as_user(plant[1], "viewer")
    spec = client.get("/api/v1/openapi.json", headers=viewer).json()
    tile = client.get("/api/v1/plants/p1/overview", headers=viewer).json()[0]
    declared = resolve({"$ref": "#/components/schemas/MachineTile"}, spec)["properties"]
    assert set(tile) == set(declared)
    part = client.get("/api/v1/plants/p1/parts/m1/3", headers=viewer).json()
    assert part["verdict"]["regions"][0] == {
        "x": 60, "y": 30, "w": 15, "h": 15, "area_px": 180, "score": 0.9
    }  # fmt: skip
    assert part["shot"]["melt_temp_c"] == 663.0 and part["images"][0]["view"] == "front"


def test_docs_page_lists_the_api_without_any_foreign_source(
    client: TestClient, plant: Seeded
) -> None:
    page = client.get("/docs", headers=as_user(plant[1], "viewer"))
    assert page.status_code == 200
    assert "GET /api/v1/plants/{plant}/kpis" in page.text
    assert "list of KpiRow" in page.text and "maximum 366" in page.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert "cdn" not in page.text.lower()
