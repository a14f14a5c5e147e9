"""A small name -> builder registry with "did you mean" errors.

Models, losses, optimizers, data sets and metrics are all built by name from
YAML; a typo must fail with the list of known names, not a KeyError.
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from bench.errors import ConfigError, UnknownNameError

T = TypeVar("T", bound=Callable[..., Any])

__all__ = ["Registry", "UnknownNameError", "ConfigError", "check_kwargs"]


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{hint} Known: {', '.join(sorted(known))}."


class Registry(Generic[T]):
    """Maps names to builders; `REG.register("name")` decorates a builder."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(fn: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._items[name] = fn
            return fn

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} '{name}'.{_suggest(name, list(self._items))}"
            ) from None

    def build(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call the builder after checking keyword names against its signature."""
        fn = self.get(name)
        check_kwargs(fn, kwargs, f"{self.kind} '{name}'")
        return fn(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def check_kwargs(fn: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> None:
    """Reject keyword names the builder does not take, suggesting the nearest."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [
        n for n, p in params.items()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    for key in kwargs:
        if key not in allowed:
            raise ConfigError(f"{what} has no option '{key}'.{_suggest(key, allowed)}")
