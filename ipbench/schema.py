"""Config schema errors as one line that names the key and what is allowed, not the whole schema."""
from __future__ import annotations


def describe(error) -> str:
    """``config key <path>: <problem>`` for a jsonschema ValidationError."""
    path = ".".join(str(part) for part in error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        key = ".".join(filter(None, [path, unknown[0] if unknown else None]))
        return f"config key {key}: unknown key (allowed here: {', '.join(allowed) or 'none'})"
    where = f"config key {path}" if path else "config"
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not one of {', '.join(map(repr, error.validator_value))}"
    if error.validator == "type":
        return f"{where}: {error.instance!r} is not of type {error.validator_value}"
    return f"{where}: {error.message}"
