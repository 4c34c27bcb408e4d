"""Validate a ``campaign report --format json`` document against the documented JSON Schema."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema


def report_schema() -> dict[str, Any]:
    """The schema shipped beside the report code (campaigns/experiments/report.schema.json)."""
    text = resources.files("campaigns.experiments").joinpath("report.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_report(document: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``document`` follows the schema."""
    schema = report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)
