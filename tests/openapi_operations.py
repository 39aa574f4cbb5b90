"""The operations of the generated OpenAPI spec, so that the matrices grow with the API by
themselves (a route added today is walked today)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any] = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def public(self) -> bool:
        return self.spec.get("security") == []

    @property
    def brand_scoped(self) -> bool:
        return self.path.startswith("/v1/brands/{brand_id}")

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    def body_schema(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        return content.get("application/json", {}).get("schema")

    def query_params(self) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p.get("in") == "query"]


@functools.cache
def openapi_spec() -> dict[str, Any]:
    """The spec as the app generates it now (tests/test_openapi_spec.py keeps the committed
    openapi/openapi.json equal to it)."""
    from app.openapi_dump import generate

    return generate()


def spec_operations() -> list[Operation]:
    spec = openapi_spec()
    return [
        Operation(method.upper(), path, op)
        for path, ops in sorted(spec["paths"].items())
        for method, op in ops.items()
        if method in HTTP_METHODS
    ]
