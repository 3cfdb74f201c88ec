"""Method registry, timm-style: each file in this package registers one class.

Method modules import torch (and anything heavy) only inside their methods,
so ``available_methods()`` lists every method and its tasks in well under a
second: the Snakefile builds the DAG from it without importing torch.
"""
from __future__ import annotations

import importlib
import pkgutil

from methods.base import Method

_REGISTRY: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator that makes a method available to the DAG under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"@register_method expects a Method subclass, got {cls!r}")
    if not cls.name or not cls.tasks:
        raise ValueError(f"{cls.__qualname__} must set `name` and a non-empty `tasks`")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} registered twice "
                         f"({_REGISTRY[cls.name].__module__} and {cls.__module__})")
    _REGISTRY[cls.name] = cls
    return cls


def _import_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")


def available_methods() -> dict[str, type[Method]]:
    _import_all()
    return dict(sorted(_REGISTRY.items()))


def get_method(name: str) -> type[Method]:
    methods = available_methods()
    if name not in methods:
        raise KeyError(f"unknown method {name!r}; registered: {', '.join(methods)}")
    return methods[name]


__all__ = ["Method", "available_methods", "get_method", "register_method"]
