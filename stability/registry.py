"""Method registries: one place per method family.

Each family of interchangeable methods (normalisation, aggregation,
imputation, ...) is a :class:`Registry`.  A method is one function registered
in one place, with the metadata the rest of the toolkit needs::

    from stability.normalise import NORMALISERS

    @NORMALISERS.register("logistic", summary="1 / (1 + exp(-x)) * scale", params=("scale",),
                          bounds=lambda p: (0.0, p["scale"]))
    def _logistic(x, stats, params, out):
        ...

From the registry come the values the spec accepts (``normalise.method``
refuses an unregistered name, listing the registered ones), the method tables
of the README (:func:`markdown_table`, checked by a test) and the spec options
each method reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator


@dataclass(frozen=True)
class Method:
    """A registered method: its name, function, one-line summary and metadata.

    Attributes
    ----------
    name : str
        The value written in the spec.
    func : callable
        The implementation (its signature is the family's).
    summary : str
        What it computes, in one line (shown in the docs table).
    params : tuple of str
        Spec options the method reads (e.g. ``("l", "u")`` for min-max).
    meta : dict
        Family-specific facts (e.g. ``data_driven``, ``bounds``).
    """

    name: str
    func: Callable
    summary: str
    params: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        meta = self.__dict__.get("meta") or {}
        if key in meta:
            return meta[key]
        raise AttributeError(key)


class Registry:
    """Named methods of one family.

    Parameters
    ----------
    family : str
        What the methods do, for messages (``"normalisation"``).
    option : str
        The spec option that names a method (``"normalise.method"``).
    defaults : dict, optional
        Metadata every method of the family has unless it says otherwise.
    """

    def __init__(self, family: str, option: str, defaults: dict | None = None):
        self.family = family
        self.option = option
        self.defaults = dict(defaults or {})
        self._methods: dict[str, Method] = {}

    def register(self, name: str, *, summary: str, params: tuple[str, ...] = (), **meta) -> Callable:
        """Decorator registering ``func`` under ``name`` (a name can be registered once)."""

        def decorator(func: Callable) -> Callable:
            if name in self._methods:
                raise ValueError(f"{self.family} method '{name}' is already registered")
            self._methods[name] = Method(name, func, summary, tuple(params), {**self.defaults, **meta})
            return func

        return decorator

    def names(self) -> tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self._methods)

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def __iter__(self) -> Iterator[Method]:
        return iter(self._methods.values())

    def __len__(self) -> int:
        return len(self._methods)

    def __getitem__(self, name: str) -> Method:
        try:
            return self._methods[name]
        except KeyError:
            raise KeyError(self.unknown(name)) from None

    def unknown(self, name: object) -> str:
        """The message for a name that is not registered."""
        return f"unknown {self.family} method {name!r} (choose from: {', '.join(self.names())})"

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise ``ValueError`` listing the registered ones."""
        if name not in self._methods:
            raise ValueError(self.unknown(name))
        return name


def markdown_table(registry: Registry) -> str:
    """The docs table of a family: method, what it computes, the options it reads."""
    lines = ["| method | score | options |", "|---|---|---|"]
    for m in registry:
        opts = ", ".join(f"`{p}`" for p in m.params) or "–"
        lines.append(f"| `{m.name}` | {m.summary} | {opts} |")
    return "\n".join(lines)


def families() -> dict[str, Registry]:
    """Every method family of the toolkit, by the spec option that selects it."""
    from .aggregate import AGGREGATIONS
    from .impute import IMPUTERS
    from .normalise import NORMALISERS

    return {r.option: r for r in (IMPUTERS, NORMALISERS, AGGREGATIONS)}
