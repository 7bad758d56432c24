"""Backend registries: plain dicts from a name to a lazily imported factory.

Heavy backends (torch, transformers, diffusers) register as ``"module.path:ClassName"`` strings
and are only imported when a user asks for them, so the lite profile never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, Mapping, TypeVar, Union

from .errors import BackendError

T = TypeVar("T")
Factory = Union[str, Callable[..., Any]]


class Registry(Generic[T]):
    """A named set of backends of one stage (``kind`` is used in error messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Factory] = {}
        self._traits: dict[str, dict[str, Any]] = {}

    def register(self, name: str, factory: Factory, **traits: Any) -> None:
        """Add a backend; ``traits`` are facts about it that callers may read without importing it
        (e.g. ``uses_text=True``: the backend's output depends on the decoded texts)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} backend {name!r} registered twice")
        self._entries[name] = factory
        self._traits[name] = dict(traits)

    def trait(self, name: str, key: str, default: Any = None) -> Any:
        """A trait given at registration (``default`` for an unknown backend or trait); imports nothing."""
        return self._traits.get(name, {}).get(key, default)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def resolve(self, name: str) -> Callable[..., T]:
        """Return the factory for ``name``, importing it on first use."""
        try:
            factory = self._entries[name]
        except KeyError:
            raise BackendError(
                f"unknown {self.kind} backend {name!r}; available: {', '.join(self.names())}"
            ) from None
        if isinstance(factory, str):
            module_name, _, attr = factory.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise BackendError(
                    f"{self.kind} backend {name!r} needs optional dependencies that are not "
                    f"installed ({exc}); install them with: pip install 'm3cvc[models]'"
                ) from exc
            factory = getattr(module, attr)
            self._entries[name] = factory
        return factory  # type: ignore[return-value]

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.resolve(name)(*args, **kwargs)


def read_params(what: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A backend's header ``params`` over ``defaults`` (``what`` names the backend in errors, e.g.
    ``"flow reconstructor"``); unknown keys or values of the wrong type raise BitstreamError."""
    from .errors import BitstreamError

    out = dict(defaults)
    for key, value in params.items():
        if key not in defaults:
            raise BitstreamError(f"{what}: unknown parameter {key!r} in the stream header")
        default = defaults[key]
        if isinstance(default, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(default, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float))
            value = float(value) if ok else value
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise BitstreamError(f"{what}: parameter {key!r} has an invalid value {value!r}")
        out[key] = value
    return out
