"""Typed core parameters: declaration, validation, and the one ``KEY=VALUE`` parser.

A core's parameters are a frozen dataclass deriving from :class:`Params`; each field is declared
with :func:`param`, which records its type, allowed values and one line of help. Validation runs
in ``__post_init__`` and raises :class:`ParamError` with a message naming the parameter, the bad
value and what is allowed — values are never adjusted silently.

The same :func:`parse_assignments` serves ``gen``, ``verify``, ``synth`` and every later command,
so ``-p block_size=16`` means the same thing everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hdl.formats import MX_FORMATS

__all__ = ["ParamError", "Params", "param", "parse_assignments", "format_value",
           "POWERS_OF_TWO"]


class ParamError(ValueError):
    """A parameter value a user gave is not allowed. The message is one line, ready to print."""


def POWERS_OF_TWO(lo: int, hi: int) -> tuple[int, ...]:
    return tuple(1 << k for k in range(hi.bit_length()) if lo <= (1 << k) <= hi)


#: Parameter kinds understood by the parser. ``format`` is an MX format name from hdl.formats;
#: ``str`` is free text whose rule lives in the dataclass's ``check`` (e.g. ``pipeline=200mhz``).
KINDS = ("int", "bool", "enum", "format", "str")


def param(default: Any, *, kind: str, doc: str, choices: Iterable[Any] | None = None,
          allowed: str | None = None, optional: bool = False):
    """Declare one core parameter.

    Parameters
    ----------
    default
        Default value (``None`` only with ``optional=True``: derived from other parameters).
    kind
        One of ``int``, ``bool``, ``enum``, ``format``, ``str``.
    doc
        One line of help, shown by ``narrowgen list``.
    choices
        The allowed values, when they are a fixed set. ``format`` parameters default to every MX
        format name.
    allowed
        Human description of the allowed values when they depend on other parameters (the check
        itself then lives in the dataclass's ``check`` method).
    optional
        ``None`` is allowed and means "derived" (described in ``doc``).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if kind == "format" and choices is None:
        choices = tuple(MX_FORMATS)
    if kind == "bool":
        choices = (False, True)
    meta = {"kind": kind, "doc": doc, "choices": tuple(choices) if choices is not None else None,
            "allowed": allowed, "optional": optional}
    return field(default=default, metadata=meta)


def _describe_allowed(meta: dict) -> str:
    if meta["choices"] is not None:
        return ", ".join(format_value(c) for c in meta["choices"])
    return meta["allowed"] or meta["kind"]


def format_value(v: Any) -> str:
    """A parameter value as the KEY=VALUE parser reads it (booleans as true/false)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@dataclass(frozen=True)
class Params:
    """Base of every core's parameter dataclass."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            meta = f.metadata
            value = getattr(self, f.name)
            if value is None and meta.get("optional"):
                continue
            kind = meta["kind"]
            if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ParamError(f"parameter {f.name} must be an integer, not {value!r}")
            if kind == "bool" and not isinstance(value, bool):
                raise ParamError(f"parameter {f.name} must be true or false, not {value!r}")
            if kind == "str" and not isinstance(value, str):
                raise ParamError(f"parameter {f.name} must be text ({meta['allowed']}), "
                                 f"not {value!r}")
            if meta["choices"] is not None and value not in meta["choices"]:
                raise ParamError(f"parameter {f.name}={format_value(value)} is not allowed; "
                                 f"allowed: {_describe_allowed(meta)}")
        self.check()

    def check(self) -> None:
        """Cross-parameter rules; raise :class:`ParamError`. Override in subclasses."""

    # --- introspection used by the CLI, the manifest and `narrowgen list --json` -------------

    @classmethod
    def describe(cls) -> list[dict]:
        out = []
        for f in dataclasses.fields(cls):
            meta = f.metadata
            out.append({
                "name": f.name,
                "type": meta["kind"],
                "default": f.default,
                "allowed": list(meta["choices"]) if meta["choices"] is not None
                else meta["allowed"],
                "doc": meta["doc"],
            })
        return out

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def resolved(self) -> dict:
        """Parameter values with derived (``None``) ones filled in; subclasses override."""
        return self.as_dict()


def _parse_one(cls: type[Params], key: str, text: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if key not in fields:
        raise ParamError(f"unknown parameter {key!r}; parameters of this core: "
                         f"{', '.join(fields) or '(none)'}")
    meta = fields[key].metadata
    kind = meta["kind"]
    if kind == "int":
        try:
            return int(text, 0)
        except ValueError:
            raise ParamError(f"parameter {key} must be an integer, not {text!r}; "
                             f"allowed: {_describe_allowed(meta)}") from None
    if kind == "bool":
        low = text.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ParamError(f"parameter {key} must be true or false, not {text!r}")
    if kind == "str":
        return text
    if kind in ("enum", "format"):
        for choice in meta["choices"]:
            if format_value(choice) == text:
                return choice
        raise ParamError(f"parameter {key}={text} is not allowed; "
                         f"allowed: {_describe_allowed(meta)}")
    raise AssertionError(kind)


def parse_assignments(cls: type[Params], assignments: Iterable[str],
                      convert: Callable[[type[Params], dict], Params] | None = None) -> Params:
    """Turn ``["block_size=16", "format=mxfp4_e2m1"]`` into a validated ``cls`` instance."""
    values: dict[str, Any] = {}
    for item in assignments:
        if "=" not in item:
            raise ParamError(f"parameter assignment must look like KEY=VALUE, not {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        if key in values:
            raise ParamError(f"parameter {key} given twice")
        values[key] = _parse_one(cls, key, text.strip())
    return cls(**values)
