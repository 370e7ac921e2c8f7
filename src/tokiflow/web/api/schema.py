"""A small JSON Schema subset: enough to validate request bodies and query parameters against
the same schemas the OpenAPI document publishes (type, properties, required,
additionalProperties, enum, minimum/maximum, minLength/maxLength, items, nullable unions)."""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


class SchemaError(ValueError):
    """The value does not match; `path` says where ("body.name", "query.limit")."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _type_ok(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def validate(value: Any, schema: dict[str, Any], path: str = "body") -> None:
    """Raise SchemaError at the first mismatch."""
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_type_ok(value, k) for k in kinds):
            raise SchemaError(path, f"must be {' or '.join(kinds)}")
    if value is None:
        return
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(path, f"must be one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, str):
        _check_string(value, schema, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(value, schema, path)
    elif isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaError(path, f"must have at most {schema['maxItems']} items")
        for i, item in enumerate(value):
            validate(item, schema.get("items", {}), f"{path}[{i}]")
    elif isinstance(value, dict):
        _check_object(value, schema, path)


def _check_string(value: str, schema: dict[str, Any], path: str) -> None:
    if len(value) < schema.get("minLength", 0):
        raise SchemaError(path, f"must be at least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise SchemaError(path, f"must be at most {schema['maxLength']} characters")


def _check_number(value: float, schema: dict[str, Any], path: str) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        raise SchemaError(path, f"must be >= {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        raise SchemaError(path, f"must be <= {schema['maximum']}")


def _check_object(value: dict[str, Any], schema: dict[str, Any], path: str) -> None:
    props = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            raise SchemaError(f"{path}.{name}", "is required")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            validate(item, props[name], f"{path}.{name}")
        elif extra is False:
            raise SchemaError(f"{path}.{name}", "is not a known field")
        elif isinstance(extra, dict):
            validate(item, extra, f"{path}.{name}")


def obj(
    required: tuple[str, ...] = (), *, extra: bool = False, **props: dict[str, Any]
) -> dict[str, Any]:
    """An object schema."""
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": extra}
    if required:
        schema["required"] = list(required)
    return schema


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*kinds, "null"]}


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
TIME = {"type": ["string", "null"], "format": "date-time"}


def fields_obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object schema from a dict of field schemas (for field names like `extra`)."""
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema
