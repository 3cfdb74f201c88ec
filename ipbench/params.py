"""Method parameters declared once: default, type, range, and whether the value names a model.

A method class lists its parameters as ``params = {"guidance_scale": Param(7.5, float, min=0), ...}``.
The Snakefile checks every configured method's params against that list before any job runs,
and the method checks them again when it is built, so a typo or a wrong type fails with
the config key it came from. Kept free of heavy imports: the DAG reads it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUIRED = object()  # a Param default that means "the config must give a value"


@dataclass(frozen=True)
class Param:
    """One method parameter. ``type`` is int, float, str or bool; ``model`` marks a model source string."""

    default: Any = REQUIRED
    type: type = float
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    model: bool = False  # the value names a model: world:<name>, trained:<artifact>, a folder or a Hub id
    nullable: bool = False

    def check(self, value, key: str):
        """``value`` converted to this parameter's type, or ValueError naming ``key``."""
        if value is None and self.nullable:
            return None
        if self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key}: expected a number, got {value!r}")
            value = float(value)
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{key}: expected an integer, got {value!r}")
        elif not isinstance(value, self.type):
            raise ValueError(f"{key}: expected {self.type.__name__}, got {value!r}")
        if self.model and not value:
            raise ValueError(f"{key}: expected a model source (world:<name>, trained:<artifact>, a folder or a "
                             "Hub id), got an empty string")
        if self.min is not None and value < self.min:
            raise ValueError(f"{key}: {value!r} is below the minimum {self.min:g}")
        if self.max is not None and value > self.max:
            raise ValueError(f"{key}: {value!r} is above the maximum {self.max:g}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{key}: {value!r} is not one of {', '.join(map(repr, self.choices))}")
        return value


def check_params(spec: dict[str, Param], params: dict | None, key: str) -> dict:
    """``params`` over the defaults of ``spec``, each checked; ``key`` is the config path, e.g. methods.x.params."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(spec))
    if unknown:
        known = ", ".join(spec) or "none"
        raise ValueError(f"config key {key}.{unknown[0]}: unknown parameter (known: {known})")
    settings = {}
    for name, param in spec.items():
        if name not in params:
            if param.default is REQUIRED:
                what = "a model source" if param.model else f"a {param.type.__name__}"
                raise ValueError(f"config key {key}.{name}: required ({what}{': ' + param.help if param.help else ''})")
            settings[name] = param.default
        else:
            settings[name] = param.check(params[name], f"config key {key}.{name}")
    return settings


def model_params(spec: dict[str, Param]) -> list[str]:
    """Names of the parameters whose values are model sources."""
    return [name for name, param in spec.items() if param.model]
