"""Write the contract's generated artefacts from the pydantic models, or check they are current.

    python -m schemas.generate           # (re)write schemas/jsonschema/*.json and asyncapi.json
    python -m schemas.generate --check   # exit 1 and list the stale files, write nothing

One JSON Schema (draft 2020-12) per event type of `schemas.catalogue`: the ten public input
types, the command `summary.requested`, the output `committee_summary.published` and the
internal `reporting.*` types. Each is `model_json_schema(mode="validation")` of the event's
model with a stable `$id`, the event type as `title` and the topic it travels on. The
AsyncAPI document comes from FastStream (see `schemas.asyncapi`). Output is deterministic -
sorted keys, two-space indent, a trailing newline - so the checked-in files can be compared
byte for byte.

JSON Schema cannot say everything the models check: the CPR guard on every string, the
256 KiB limit on a record value (the string and list limits are `maxLength` / `maxItems`), strict
integers (JSON Schema counts 3.0 as an integer), a plan needing a milestone in all and unique
milestone ids. `schemas.decode.decode` is the authority; the schemas are for integrators.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.asyncapi import build_document
from schemas.catalogue import BY_TYPE, CATALOGUE

PACKAGE_DIR = Path(__file__).resolve().parent
JSONSCHEMA_DIR = PACKAGE_DIR / "jsonschema"
ASYNCAPI_PATH = PACKAGE_DIR / "asyncapi.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

_REPORTING_DESCRIPTION = (
    "Internal reporting event: the whole new state of one entity that changed in its owning "
    "service, the entity's growing `version` and the service's watermark for the municipality. "
    "An older version never overwrites a newer one."
)


def event_types() -> dict[str, tuple[type[BaseModel], str, int]]:
    """Every event type of the contract with its model, topic and schema version, in the
    catalogue's order (a view of `schemas.catalogue.CATALOGUE`)."""
    return {spec.event_type: (spec.model, spec.topic, spec.schema_version) for spec in CATALOGUE}


def schema_id(event_type: str, version: int) -> str:
    """A stable, location-independent `$id` (a URN: the schemas are not served anywhere)."""
    return f"urn:taskforce:schema:v{version}:{event_type}"


def json_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of one event type, as generated from its pydantic model."""
    spec = BY_TYPE[event_type]
    schema = spec.model.model_json_schema(mode="validation")
    description = schema.get("description") or (_REPORTING_DESCRIPTION if spec.kind == "internal" else "")
    schema.update(
        {
            "$schema": DIALECT,
            "$id": schema_id(event_type, spec.schema_version),
            "title": event_type,
            "description": f"{description}\n\nTopic `{spec.topic}`, record key = `municipality_code`."
            .strip(),
        }
    )
    return schema


def render(document: Any) -> str:
    """The one serialisation of every artefact: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def artefacts() -> dict[Path, str]:
    """Every generated file's path and its fresh content; nothing is written."""
    files = {JSONSCHEMA_DIR / f"{spec.event_type}.json": render(json_schema(spec.event_type))
             for spec in CATALOGUE}
    files[ASYNCAPI_PATH] = render(build_document())
    return files


def stale(files: dict[Path, str] | None = None) -> list[Path]:
    """Generated files that are missing or differ, and leftover schemas of no event type."""
    files = artefacts() if files is None else files
    out = [path for path, text in files.items()
           if not path.is_file() or path.read_text(encoding="utf-8") != text]
    if JSONSCHEMA_DIR.is_dir():
        out.extend(path for path in sorted(JSONSCHEMA_DIR.glob("*.json")) if path not in files)
    return out


def write(files: dict[Path, str] | None = None) -> list[Path]:
    """Write what changed and remove leftovers; return the paths touched."""
    files = artefacts() if files is None else files
    JSONSCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    touched = stale(files)
    for path in touched:
        if path in files:
            path.write_text(files[path], encoding="utf-8", newline="\n")
        else:
            path.unlink()
    return touched


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(PACKAGE_DIR.parent))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate",
                                     description="Write or check the generated contract artefacts.")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 and list the stale files instead of writing them")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale()
        for path in outdated:
            print(f"stale: {_relative(path)}", file=sys.stderr)
        if outdated:
            print("run `python -m schemas.generate` (make schemas) and commit the result", file=sys.stderr)
            return 1
        print("generated contract artefacts are up to date")
        return 0
    touched = write()
    for path in touched:
        print(f"{'wrote' if path.exists() else 'removed'} {_relative(path)}")
    if not touched:
        print("generated contract artefacts are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
