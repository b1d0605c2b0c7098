"""Stream payloads as numpy arrays: flatten an ``amaranth.lib.data`` layout, pack and unpack beats.

A payload layout is a ``StructLayout`` whose fields are plain shapes or ``ArrayLayout``s of plain
shapes (nesting deeper is rejected). Amaranth places the first field at the LSB and array element
0 lowest; beats travel as rows of little-endian bytes (``uint8 [n_beats, ceil(width / 8)]``), which
is what the generic testbench drives onto ``i__payload`` and reads off ``o__payload``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["Leaf", "leaves", "payload_width", "pack_beats", "unpack_beats", "describe_layout"]


@dataclass(frozen=True)
class Leaf:
    """One field of a payload: ``count`` elements of ``width`` bits from bit ``offset`` up."""

    name: str
    offset: int
    width: int
    count: int          # 0 for a scalar field, else the ArrayLayout length
    signed: bool

    @property
    def bits(self) -> int:
        return self.width * max(self.count, 1)


def leaves(layout: data.StructLayout) -> list[Leaf]:
    out = []
    for name, fld in layout:
        shape = fld.shape
        if isinstance(shape, data.ArrayLayout):
            elem = Shape.cast(shape.elem_shape)
            if isinstance(shape.elem_shape, data.Layout):
                raise TypeError(f"payload field {name!r}: nested layouts are not supported")
            out.append(Leaf(name, fld.offset, elem.width, shape.length, elem.signed))
        elif isinstance(shape, data.Layout):
            raise TypeError(f"payload field {name!r}: nested layouts are not supported")
        else:
            s = Shape.cast(shape)
            out.append(Leaf(name, fld.offset, s.width, 0, s.signed))
    return out


def payload_width(layout: data.StructLayout) -> int:
    return Shape.cast(layout).width


def _nbytes(layout) -> int:
    return (payload_width(layout) + 7) // 8


def pack_beats(layout: data.StructLayout, fields: dict[str, np.ndarray]) -> np.ndarray:
    """Pack per-field arrays (``[n]`` or ``[n, count]``) into payload byte rows."""
    lv = leaves(layout)
    missing = {leaf.name for leaf in lv} - set(fields)
    extra = set(fields) - {leaf.name for leaf in lv}
    if missing or extra:
        raise ValueError(f"payload fields do not match the layout: missing {sorted(missing)}, "
                         f"unexpected {sorted(extra)}")
    n = len(next(iter(fields.values())))
    width = payload_width(layout)
    bits = np.zeros((n, _nbytes(layout) * 8), dtype=np.uint8)
    for leaf in lv:
        v = np.asarray(fields[leaf.name])
        shape = (n,) if leaf.count == 0 else (n, leaf.count)
        if v.shape != shape:
            raise ValueError(f"payload field {leaf.name!r} must have shape {shape}, not {v.shape}")
        v = v.astype(np.int64).reshape(n, -1).astype(np.uint64)
        lim = np.uint64(1) << np.uint64(leaf.width)
        if leaf.signed:
            v = v & (lim - np.uint64(1))
        elif np.any(v >= lim):
            raise ValueError(f"payload field {leaf.name!r} holds a value wider than "
                             f"{leaf.width} bits")
        shifts = np.arange(leaf.width, dtype=np.uint64)
        fb = ((v[:, :, None] >> shifts) & np.uint64(1)).astype(np.uint8)
        bits[:, leaf.offset:leaf.offset + leaf.bits] = fb.reshape(n, -1)
    assert not bits[:, width:].any()
    return np.packbits(bits, axis=1, bitorder="little")


def unpack_beats(layout: data.StructLayout, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_beats`: byte rows → per-field int64 arrays."""
    rows = np.asarray(rows, dtype=np.uint8)
    n = rows.shape[0]
    bits = np.unpackbits(rows.reshape(n, -1), axis=1, bitorder="little").astype(np.int64)
    out = {}
    for leaf in leaves(layout):
        fb = bits[:, leaf.offset:leaf.offset + leaf.bits].reshape(n, max(leaf.count, 1),
                                                                  leaf.width)
        v = (fb << np.arange(leaf.width, dtype=np.int64)).sum(axis=2)
        if leaf.signed:
            v = np.where(v >= (1 << (leaf.width - 1)), v - (1 << leaf.width), v)
        out[leaf.name] = v if leaf.count else v[:, 0]
    return out


def describe_layout(layout: data.StructLayout) -> dict:
    """The manifest's description of a payload: total width and every field's bit range."""
    return {
        "width": payload_width(layout),
        "fields": [
            {"name": leaf.name, "offset": leaf.offset, "width": leaf.width,
             "count": leaf.count, "signed": leaf.signed}
            for leaf in leaves(layout)
        ],
    }
