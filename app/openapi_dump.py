"""Write the OpenAPI spec generated from the code: `python -m app.openapi_dump <path>`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app import create_app
from app.config import TestConfig


def generate() -> dict:
    app = create_app(TestConfig)
    with app.app_context():
        return app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()


def render(spec: dict) -> str:
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "openapi/openapi.json")
    target.write_text(render(generate()))
    print(f"wrote {target}")
