"""The model registry: builders found by name, third-party builders as `"package.module:function"`.

A builder has the signature

    build(num_classes: int = 19, input_shape=(None, None, 3), *, aux_head: bool = False, **options)
        -> keras.Model

and returns a model whose input is a normalised float image batch and whose output is logits at input
resolution, shape (batch, H, W, num_classes). With `aux_head=True` (training) the output is a dict
`{"logits": main_logits, "aux": aux_logits}`, both at input resolution; builders without an auxiliary head
return `{"logits": ...}` alone. Presets are named option sets (e.g. a CPU-sized variant).

This module imports no deep-learning framework: listing and lookup stay cheap.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from data.errors import UserError

BUILTIN_MODULES = (
    "models.pspnet",
    "models.lightweight_pspnet",
    "models.fcn",
    "models.espnet",
    "models.espnetv2",
)


class RegistryError(UserError):
    """Unknown model name, bad plugin path or bad option, with a message meant for the user."""


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., Any]
    description: str = ""
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """Keyword options of the builder with their defaults (its signature is its documentation)."""
        sig = inspect.signature(self.builder)
        return {
            n: p.default
            for n, p in sig.parameters.items()
            if p.default is not p.empty and n not in ("num_classes", "input_shape")
        }


_REGISTRY: dict[str, Entry] = {}
_builtins_loaded = False


def register(name: str, *, description: str = "", presets: dict[str, dict[str, Any]] | None = None):
    """Decorator: `@register("pspnet", presets={"cpu": {...}})` on a builder function."""

    def decorate(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name].builder is not builder:
            raise RegistryError(f"model name '{name}' is registered twice")
        doc = description or (inspect.getdoc(builder) or "").split("\n", 1)[0]
        _REGISTRY[name] = Entry(name, builder, doc, dict(presets or {}))
        return builder

    return decorate


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    for module in BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise RegistryError(f"built-in model module '{module}' failed to import: {exc}") from exc
    _builtins_loaded = True


def available() -> list[str]:
    """Registered names, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get(name: str) -> Entry:
    """The entry for a registered name or for a `"package.module:function"` plugin path."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise RegistryError(f"cannot import plugin module '{module_name}' of '{name}': {exc}") from exc
        except Exception as exc:  # the plugin's own code failed while importing: name it, not our stack
            raise RegistryError(
                f"plugin module '{module_name}' of '{name}' failed while importing "
                f"({type(exc).__name__}: {exc}): fix the plugin"
            ) from exc
        builder = getattr(module, attr, None)
        if not callable(builder):
            raise RegistryError(f"plugin '{name}': module '{module_name}' has no function '{attr}'")
        return Entry(name, builder, (inspect.getdoc(builder) or "").split("\n", 1)[0])
    _load_builtins()
    if name not in _REGISTRY:
        raise RegistryError(
            f"unknown model '{name}': choose one of {', '.join(available())} "
            f"or give a plugin as package.module:function"
        )
    return _REGISTRY[name]


def resolve_options(name: str, preset: str | None = None, **options: Any) -> dict[str, Any]:
    """Options of a preset (if any) overridden by explicit options."""
    entry = get(name)
    merged: dict[str, Any] = {}
    if preset:
        if preset not in entry.presets:
            raise RegistryError(
                f"model '{name}' has no preset '{preset}' (presets: {', '.join(entry.presets) or 'none'})"
            )
        merged.update(entry.presets[preset])
    merged.update(options)
    return merged


def build(
    name: str,
    num_classes: int = 19,
    input_shape: tuple = (None, None, 3),
    *,
    preset: str | None = None,
    **options: Any,
):
    """Build a registered (or plugin) model: `build("pspnet", preset="cpu", aux_head=True)`."""
    entry = get(name)
    options = check_options(name, preset, **options)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise RegistryError(
            f"model '{name}': num_classes must be a whole number of at least 1, not {num_classes!r}"
        )
    try:
        model = entry.builder(num_classes=num_classes, input_shape=input_shape, **options)
    except (ValueError, TypeError) as exc:  # an option value the builder rejects (depth=7, width=-1, ...)
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "none"
        raise RegistryError(
            f"model '{name}'{f' (preset {preset})' if preset else ''} cannot be built with options "
            f"{shown} and num_classes={num_classes}: {exc}; see `python -m bench models {name}`"
        ) from exc
    import keras  # already imported by the builder; the check keeps a plugin's mistake out of training

    if not isinstance(model, keras.Model):
        raise RegistryError(f"model '{name}': the builder returned {type(model).__name__}, not a keras.Model")
    return model


def check_options(name: str, preset: str | None = None, **options: Any) -> dict[str, Any]:
    """The preset's options overridden by `options`, checked against the builder's signature (no build)."""
    entry = get(name)
    options = resolve_options(name, preset, **options)
    try:
        inspect.signature(entry.builder).bind(num_classes=19, input_shape=(None, None, 3), **options)
    except TypeError as exc:
        raise RegistryError(f"model '{name}' does not take these options {sorted(options)}: {exc}") from exc
    return options


def parse_option(text: str) -> tuple[str, Any]:
    """`key=value` from the command line, value parsed as a Python literal where it is one."""
    import ast

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise RegistryError(f"model option '{text}' is not key=value")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value
