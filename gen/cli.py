"""The ``narrowgen`` command line: list, gen, verify, quantize.

Every bad input ends in one line on stderr naming the problem and what is allowed, exit status 2,
and no partial output file. Internal errors (bugs) still show a traceback: hiding them would make
them impossible to report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .params import ParamError, format_value, parse_assignments
from .registry import VectorError, all_cores, get_core

EXIT_USAGE = 2
EXIT_FAIL = 1


class UserError(Exception):
    """A problem with what the user asked for; printed as one line."""


def _stage(msg: str) -> None:
    print(f"narrowgen: {msg}", file=sys.stderr, flush=True)


# --- files -----------------------------------------------------------------------------------

def _load_arrays(path: str, what: str) -> dict[str, np.ndarray]:
    p = Path(path)
    if not p.exists():
        raise UserError(f"{what} {path!r} does not exist")
    if p.is_dir():
        raise UserError(f"{what} {path!r} is a directory, not a .npz/.npy file")
    try:
        obj = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{what} {path!r} is not a readable .npy/.npz file ({exc})") from None
    if isinstance(obj, np.ndarray):
        return {"x": obj}
    try:
        with obj:
            return {name: obj[name] for name in obj.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{what} {path!r} is corrupt ({exc})") from None


class _AtomicOutput:
    """Reserve an output path now (fail fast if unwritable); publish it only on success."""

    def __init__(self, path: str, what: str):
        self.path = Path(path)
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{self.path.name}.", suffix=".tmp")
        except OSError as exc:
            raise UserError(f"cannot write {what} {path!r}: {exc.strerror}") from None
        os.close(fd)
        self.tmp = Path(tmp)
        if self.path.is_dir():
            self.discard()
            raise UserError(f"{what} {path!r} is a directory")

    def save_npz(self, **arrays) -> None:
        try:
            with open(self.tmp, "wb") as f:
                np.savez(f, **arrays)
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise UserError(f"cannot write {self.path}: {exc.strerror}") from None

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


# --- commands --------------------------------------------------------------------------------

def cmd_list(args) -> int:
    cores = all_cores()
    if args.json:
        out = [{"name": c.name, "description": c.description,
                "params": c.params.describe(), "vectors": c.vectors_doc, "dump": c.dump_doc}
               for c in cores.values()]
        print(json.dumps(out, indent=2))
        return 0
    width = max(len(n) for n in cores)
    for c in cores.values():
        names = " ".join(f"{p['name']}={_show_default(p['default'])}"
                         for p in c.params.describe())
        print(f"{c.name:<{width}}  {c.description}")
        print(f"{'':<{width}}  params: {names}")
    return 0


def _show_default(v) -> str:
    return "auto" if v is None else format_value(v)


def _checked(lookup, value):
    """``lookup(value)``, its ValueError (which lists what is allowed) turned into a user error."""
    try:
        return lookup(value)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _core_and_params(args):
    core = get_core(args.core)
    return core, parse_assignments(core.params, args.param or [])


def cmd_gen(args) -> int:
    from .emit import emit, write_outputs
    core, params = _core_and_params(args)
    emitted = emit(core, params)
    try:
        v, m = write_outputs(emitted, Path(args.output))
    except OSError as exc:
        raise UserError(f"cannot write to output directory {args.output!r}: "
                        f"{exc.strerror}") from None
    print(f"{v}")
    print(f"{m}")
    print(f"latency {emitted.manifest['latency']} cycles, throughput "
          f"{emitted.manifest['throughput']}")
    return 0


def cmd_verify(args) -> int:
    from .verify import verify
    core, params = _core_and_params(args)
    vectors = _load_arrays(args.vectors, "vectors file") if args.vectors else None
    if vectors is not None:
        core.check_vectors(params, vectors)          # bad vectors: one line, before any progress
    dump = _AtomicOutput(args.dump, "dump file") if args.dump else None
    try:
        source = (f"vectors from {args.vectors}" if vectors is not None else
                  f"{args.n} random vectors + corner cases, seed {args.seed}")
        _stage(f"verifying {core.name} on {args.sim} ({source})")
        report = verify(core, params, sim=args.sim, n=args.n, seed=args.seed, vectors=vectors,
                        work_dir=Path(args.work_dir), idle_prob=args.idle,
                        stall_prob=args.backpressure, progress=_stage)
        for line in report.summary_lines():
            print(line)
        if dump is not None:
            if not report.outputs:
                dump.discard()
                raise UserError("no dump written: the hardware did not produce every output")
            dump.save_npz(**report.outputs)
            print(f"dump        {args.dump}")
    except BaseException:
        if dump is not None:
            dump.discard()
        raise
    return 0 if report.passed else EXIT_FAIL


def cmd_quantize(args) -> int:
    from hdl.formats import mx_format
    from sim.golden import mx as golden_mx
    fmt = mx_format(args.format)
    x = _load_arrays(args.input, "input file")
    if list(x) != ["x"]:
        raise UserError(f"input file {args.input!r} must be a .npy array, not an .npz archive")
    x = x["x"]
    if x.dtype != np.float32:
        raise UserError(f"input file {args.input!r} holds {x.dtype.name}; quantize takes float32 "
                        f"(convert first, e.g. x.astype(np.float32): that rounding is yours)")
    if x.ndim == 0 or x.size == 0:
        raise UserError(f"input file {args.input!r} holds an empty or 0-d array; nothing to "
                        f"quantize")
    if not -x.ndim <= args.axis < x.ndim:
        raise UserError(f"--axis {args.axis} is out of range for an array of {x.ndim} "
                        f"dimensions; allowed: {-x.ndim}..{x.ndim - 1}")
    out = _AtomicOutput(args.output, "output file")
    try:
        try:
            q = golden_mx.quantize(x, fmt.name, block_size=args.block_size, axis=args.axis,
                                   rounding=args.rounding)
        except (ValueError, TypeError) as exc:
            raise UserError(str(exc)) from None
        values = golden_mx.dequantize(q)
        out.save_npz(scales=q.scales, codes=q.codes, values=values, format=np.str_(fmt.name),
                     block_size=np.int64(args.block_size), rounding=np.str_(args.rounding),
                     axis=np.int64(q.axis))
    except BaseException:
        out.discard()
        raise
    print(f"{args.output}: {q.scales.size} blocks of {args.block_size} {fmt.name} "
          f"({x.size} values, rounding {args.rounding}, axis {q.axis})")
    return 0


def cmd_synth(args) -> int:
    from boards.synth import FamilyMismatch, format_table, synthesize
    from boards.targets import get_target

    from .emit import atomic_write, emit
    core, params = _core_and_params(args)
    _checked(get_target, args.target)
    emitted = emit(core, params)
    out = Path(args.output or f"build/synth/{emitted.top}-{args.target}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write to output directory {str(out)!r}: {exc.strerror}") from None
    _stage(f"synthesizing {emitted.top} for {args.target} ({args.seeds} seed"
           f"{'s' if args.seeds != 1 else ''})")
    try:
        report = synthesize(emitted.component, emitted.top, args.target, seeds=args.seeds,
                            freq_mhz=args.freq, work_dir=out, cache_dir=Path(args.cache_dir),
                            progress=_stage,
                            meta={"core": core.name, "params": params.resolved()})
    except FamilyMismatch as exc:          # a parameter choice, not a tool failure
        raise UserError(str(exc)) from None
    path = out / "report.json"
    atomic_write(path, json.dumps(report, indent=2) + "\n")
    print(format_table(report))
    print(f"report      {path}")
    return 0


def cmd_sweep(args) -> int:
    from boards.targets import get_target

    from .sweep import format_rows, parse_grid, run_sweep
    core = get_core(args.core)
    _checked(get_target, args.target)
    grid = _checked(parse_grid, args.grid or [])
    names = [p["name"] for p in core.params.describe()]
    for key in grid:                               # fail before any work on an unknown key
        if key not in names:
            raise UserError(f"--grid {key}: unknown parameter of {core.name}; parameters: "
                            f"{', '.join(names)}")
    out = Path(args.output)
    rows = run_sweep(core.name, grid, args.target, fixed=args.param or [], seeds=args.seeds,
                     freq_mhz=args.freq, scheduler=args.scheduler, out_dir=out,
                     work_dir=Path(args.work_dir), cache_dir=Path(args.cache_dir),
                     verify_vectors=args.verify, workers=args.workers)
    print(format_rows(rows))
    for name in ("sweep.csv", "sweep.json", "sweep.png"):
        print(f"{name:<11} {out / name}")
    failed = sum(1 for r in rows if r["status"] != "ok")
    if failed:
        print(f"{failed} of {len(rows)} points failed (errors recorded above and in sweep.json)")
    return 0 if failed < len(rows) else EXIT_FAIL


def cmd_board(args) -> int:
    from boards.platforms import build_bitstream, get_board
    core, params = _core_and_params(args)
    _checked(get_board, args.board)
    top = core.top_name(params)
    out = Path(args.output or f"build/board/{args.board}-{top}")
    _stage(f"building a bitstream for {args.board}: {top} behind the UART host link "
           f"({args.baud} baud)")
    path = build_bitstream(args.board, core.build(params), out, baud=args.baud,
                           progress=_stage)
    print(f"bitstream   {path}")
    print(f"run it      narrowgen run {args.board} {core.name} "
          + "".join(f"-p {a} " for a in args.param or []) + f"--port DEV --baud {args.baud}")
    return 0


def cmd_run(args) -> int:
    """Golden stimulus through a real board; the same scoring as ``verify``."""
    import time

    from boards.host import HostLink, SerialTransport, run_vectors
    from boards.platforms import get_board

    from .verify import VerifyReport, prepare, score
    core, params = _core_and_params(args)
    _checked(get_board, args.board)
    vectors = _load_arrays(args.vectors, "vectors file") if args.vectors else None
    t0 = time.perf_counter()
    prep = prepare(core, params, n=args.n, seed=args.seed, vectors=vectors)
    _stage(f"running {prep.count} vectors of {core.name} on {args.board} at {args.port}")
    link = HostLink(SerialTransport(args.port, args.baud))
    link.resync()            # drop any half frame an interrupted earlier session left behind
    actual = run_vectors(link, prep.in_rows, prep.out_bytes, prep.exp_rows.shape[0],
                         timeout=args.timeout)
    wall = time.perf_counter() - t0
    report = VerifyReport(core=core.name, top=prep.emitted.top, params=params.resolved(),
                          simulator=f"board {args.board} ({args.port})", seed=args.seed,
                          transactions=prep.count, mismatches=0, cycles=0,
                          wall_seconds=wall, build_seconds=0.0, sim_seconds=wall,
                          verilog=Path("-"))
    score(core, params, prep, actual, report)
    for line in report.summary_lines():
        if not line.startswith(("cycles", "verilog")):
            print(line)
    return 0 if report.passed else EXIT_FAIL


# --- parser ----------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):           # one line, exit 2, as for every other bad input
        self.exit(EXIT_USAGE, f"narrowgen: error: {message} (see {self.prog} -h)\n")


def _block_size(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
    if v < 1 or v & (v - 1) or v > 1024:
        raise argparse.ArgumentTypeError(f"must be a power of two in 1..1024, not {v}")
    return v


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {v}")
    return v


def _probability(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), not {text!r}") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), not {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from hdl.formats import MX_FORMATS
    from sim.runner import SIMULATORS

    p = _Parser(prog="narrowgen",
                description="Generate, verify and quantize narrow-precision DL hardware.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("list", help="list the cores and their parameters")
    s.add_argument("--json", action="store_true", help="every parameter with type, default, "
                   "allowed values")
    s.set_defaults(func=cmd_list)

    def core_args(s):
        s.add_argument("core", help="core name (see narrowgen list)")
        s.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                       help="set a core parameter (repeatable)")

    s = sub.add_parser("gen", help="emit <top>.v and manifest.json")
    core_args(s)
    s.add_argument("-o", "--output", default="build/gen", metavar="DIR",
                   help="output directory (default build/gen)")
    s.set_defaults(func=cmd_gen)

    s = sub.add_parser("verify", help="simulate the emitted Verilog against the golden model")
    core_args(s)
    s.add_argument("--sim", choices=SIMULATORS, default="verilator")
    s.add_argument("-n", type=int, default=1000, help="random vectors (default 1000), on top of "
                   "the core's corner cases")
    s.add_argument("--seed", type=int, default=1, help="stimulus and traffic seed (default 1)")
    s.add_argument("--vectors", metavar="IN.npz", help="take the inputs from this file "
                   "(schema: narrowgen list --json)")
    s.add_argument("--dump", metavar="OUT.npz", help="write the outputs the hardware produced")
    s.add_argument("--idle", type=_probability, default=0.2,
                   help="probability of an idle input cycle (default 0.2)")
    s.add_argument("--backpressure", type=_probability, default=0.2,
                   help="probability of o.ready low in a cycle (default 0.2)")
    s.add_argument("--work-dir", default="build", help="build cache (default build)")
    s.set_defaults(func=cmd_verify)

    from boards.targets import TARGETS
    s = sub.add_parser("synth", help="synthesize with Yosys + nextpnr (YoWASP) and report area "
                       "and Fmax")
    core_args(s)
    s.add_argument("--target", required=True, metavar="T",
                   help=f"one of: {', '.join(TARGETS)}")
    s.add_argument("--seeds", type=_positive, default=3, help="nextpnr seeds (default 3)")
    s.add_argument("--freq", type=float, default=None, metavar="MHZ",
                   help="nextpnr target frequency (default: per target)")
    s.add_argument("-o", "--output", metavar="DIR", help="report directory "
                   "(default build/synth/<top>-<target>)")
    s.add_argument("--cache-dir", default="build/synth_cache", help="tool result cache "
                   "(default build/synth_cache)")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("sweep", help="synthesize (and verify) over a parameter grid on Dask")
    s.add_argument("core", help="core name (see narrowgen list)")
    s.add_argument("--grid", action="append", metavar="KEY=V1,V2,...", help="swept parameter "
                   "(repeatable; the grid is their cartesian product)")
    s.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                   help="a fixed parameter for every point (repeatable)")
    s.add_argument("--target", required=True, metavar="T",
                   help=f"one of: {', '.join(TARGETS)}")
    s.add_argument("--seeds", type=_positive, default=1, help="nextpnr seeds per point "
                   "(default 1)")
    s.add_argument("--freq", type=float, default=None, metavar="MHZ")
    s.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler, e.g. "
                   "tcp://10.0.0.5:8786 (default: a local cluster)")
    s.add_argument("--workers", type=_positive, default=None, help="local cluster workers "
                   "(default: CPU count)")
    s.add_argument("--verify", type=int, default=0, metavar="N", help="also verify each point "
                   "with N random vectors on Verilator")
    s.add_argument("-o", "--output", default="build/sweep", metavar="DIR")
    s.add_argument("--work-dir", default="build/synth", help=argparse.SUPPRESS)
    s.add_argument("--cache-dir", default="build/synth_cache")
    s.set_defaults(func=cmd_sweep)

    from boards.platforms import BOARDS
    s = sub.add_parser("board", help="a bitstream for a real board: the core behind a UART "
                       "host link")
    s.add_argument("board", help=f"one of: {', '.join(BOARDS)}")
    core_args(s)
    s.add_argument("--baud", type=_positive, default=115200)
    s.add_argument("-o", "--output", metavar="DIR",
                   help="build directory (default build/board/<board>-<top>)")
    s.set_defaults(func=cmd_board)

    s = sub.add_parser("run", help="verify a core on a real board over its serial port")
    s.add_argument("board", help=f"one of: {', '.join(BOARDS)}")
    core_args(s)
    s.add_argument("--port", required=True, metavar="DEV", help="serial device, e.g. "
                   "/dev/ttyUSB1")
    s.add_argument("--baud", type=_positive, default=115200)
    s.add_argument("-n", type=int, default=1000, help="random vectors (default 1000)")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--vectors", metavar="IN.npz", help="take the inputs from this file")
    s.add_argument("--timeout", type=float, default=2.0, help="seconds of silence before "
                   "giving up (default 2)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("quantize", help="quantize a float32 .npy to MX with the golden model")
    s.add_argument("input", metavar="IN.npy")
    s.add_argument("-f", "--format", required=True, choices=list(MX_FORMATS))
    s.add_argument("--block-size", type=_block_size, default=32)
    s.add_argument("--axis", type=int, default=-1)
    s.add_argument("--rounding", choices=("even", "nearest", "floor"), default="even")
    s.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    s.set_defaults(func=cmd_quantize)
    return p


def _flow_errors() -> tuple:
    from boards.host import LinkError
    from boards.platforms import BitstreamError
    from boards.synth import SynthError
    return (SynthError, BitstreamError, LinkError)


def main(argv: list[str] | None = None) -> int:
    from sim.runner import SimError
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ParamError, VectorError, SimError, *_flow_errors()) as exc:
        text = str(exc)
        first, _, rest = text.partition("\n")
        print(f"narrowgen: error: {first}", file=sys.stderr)
        if rest:
            print(rest, file=sys.stderr)
        # Bad input is a usage error (2); a tool or simulator that failed on good input is 1.
        return EXIT_FAIL if isinstance(exc, (SimError, *_flow_errors())) else EXIT_USAGE
    except KeyboardInterrupt:
        print("narrowgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:           # e.g. `narrowgen list --json | head`
        sys.stdout = None
        return 0


if __name__ == "__main__":
    sys.exit(main())
