"""Named registries: one place per kind of part (backbones, image descriptors, out-of-domain rules,
synthetic painters) where each part is registered once, under its name, with every fact about it.

Modelled on timm's `register_model`: the registration is the part's whole description, so adding one
touches one file, and nothing elsewhere branches on a part's name.

    BACKBONES: Registry[BackboneSpec] = Registry("backbone", error=BackboneError)

    @BACKBONES.register("tiny_cnn")          # as a decorator, for functions
    def ...

    BACKBONES.add("resnet18", spec)          # or directly, for values
    BACKBONES["vgg99"]                       # BackboneError: unknown backbone 'vgg99'; choose one of ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from roomsight.errors import RegistrationError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to entries, in registration order. `kind` names the parts in messages ("backbone"); an
    unknown name raises `error` (a RegistrationError unless the owner has a more specific one)."""

    def __init__(self, kind: str, error: type[Exception] = RegistrationError) -> None:
        self.kind = kind
        self._error = error
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise RegistrationError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""
        return lambda entry: self.add(name, entry)

    def remove(self, name: str) -> None:
        """For tests that register a part of their own and must leave the registry as they found it."""
        del self._entries[self.check(name)]

    def check(self, name: str) -> str:
        if name not in self._entries:
            known = ", ".join(self._entries) or "none registered"
            raise self._error(f"unknown {self.kind} {name!r}; choose one of {known}")
        return name

    def __getitem__(self, name: str) -> T:
        return self._entries[self.check(name)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())
