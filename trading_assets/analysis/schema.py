"""The answer's JSON schema in the strict form structured-output APIs accept.

OpenAI's strict mode wants every object closed (``additionalProperties: false``) with every
property required, no ``$ref`` indirection it cannot follow, and only the keywords it enforces;
Anthropic takes the same schema as a tool's ``input_schema``. The full rules (minimum lengths,
price ordering) are checked after parsing, so nothing is lost by dropping keywords here.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from trading_assets.analysis.answer import SignalAnswer

SCHEMA_NAME = "trading_signal"

# Keywords OpenAI strict mode enforces; anything else (titles, defaults, minLength) is dropped.
_KEPT = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "enum", "anyOf",
        "description", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "multipleOf", "minItems", "maxItems", "pattern", "format", "const",
    }
)


def strict_schema(model: type[BaseModel] = SignalAnswer) -> dict[str, Any]:
    """``model``'s JSON schema, inlined and closed for strict structured output."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    return _strict(schema, definitions)


def _strict(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_strict(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name not in definitions:
            raise ValueError(f"schema reference {node['$ref']} has no definition")
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _strict({**copy.deepcopy(definitions[name]), **siblings}, definitions)
    out = {
        k: _strict(v, definitions) for k, v in node.items() if k in _KEPT and k != "properties"
    }
    if "properties" in node:
        out["properties"] = {k: _strict(v, definitions) for k, v in node["properties"].items()}
        required = set(node.get("required", []))
        for name, prop in out["properties"].items():
            # Strict mode has no optional fields: an optional one becomes "value or null".
            if name not in required and not _nullable(prop):
                out["properties"][name] = {"anyOf": [prop, {"type": "null"}]}
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out


def _nullable(node: dict[str, Any]) -> bool:
    if node.get("type") == "null":
        return True
    return any(_nullable(option) for option in node.get("anyOf", []))
