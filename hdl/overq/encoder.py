"""OverQ encoder: fine activations -> ``b``-bit slot values and 2-bit tags (ALGORITHMS.md §2.2-2.3).

Numerics are ``sim.golden.overq.encode`` (the specification): per tile of ``rows`` fine inputs
``xf`` (``3b`` bits), coarse codes ``c = (xf + 2**(b-1)) >> b``, outliers ``c > M = 2**b - 1``,
zeros ``c == 0``; a greedy left-to-right range pass in which an outlier borrows the nearest zero
at most ``cascade`` slots below it (tags ``NORMAL``/``RANGE``/``SHIFTED``), then the optional
precision pass (``PREC``).

Hardware (one tile per cycle, no stalls, no enables):

* **detect stage** (registered, per element): the outlier and zero detectors (bit tests) and
  ``w``, the only data kept: ``v = min(c, 2**(2b) - 1)`` for an outlier, else the low ``2b``
  input bits (a non-outlier's ``xf < 2**(2b)``).
* **cover stage** (registered, across elements): per outlier its cover mask ``therm`` (``d``
  ones, ``d`` the distance to the nearest zero in the next ``D`` slots, 0 if none: a priority
  encoder in thermometer code) and per slot the precision candidate ``~outlier & zero below``.
* **chain stages**: the range pass is a left-to-right chain whose state ``busy`` (``D`` bits)
  marks which of the next slots an earlier outlier's cascade still covers: slot ``i`` is free (its
  own ``NORMAL`` element) iff ``busy[0]`` is clear, and then ``busy' = therm[i]``, else ``busy' =
  busy >> 1`` (one LUT level per slot, no adder); a covered slot is ``RANGE`` if the slot above
  is free (the cascade starts there), else ``SHIFTED``. The precision pass rides along as a 1-bit
  chain, ``ext[i] = free[i] & cand[i] & ~ext[i-1]`` (a free non-outlier leaves the next slot free,
  so the range pass needs to say nothing more). The chain resolves ``slots_per_stage`` slots per
  cycle; its state is registered between segments, each segment takes its inputs from
  per-element delay lines (skew) and registers its slots' tag and ``ext`` flag.
* **value stage**: one cycle after its segment, each slot's value is a local mux of its own and
  the above element's ``w``; the results of earlier segments are then delayed to the last
  (deskew), so every slot leaves together from a register.

Latency ``ceil(rows / slots_per_stage) + 3`` cycles. The default ``slots_per_stage = 4`` meets
150 MHz on ECP5-85F (speed 6) at ``rows=16, bits=4, cascade=4, precision=True``.
"""

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.common import check_range, wire
from hdl.common.pipeline import delay
from hdl.common.stream_shell import stream_shell

__all__ = ["OverQEncode", "OverQEncoder", "NORMAL", "SHIFTED", "RANGE", "PREC", "BITS",
           "MAX_CASCADE", "MAX_ROWS", "DEFAULT_SLOTS_PER_STAGE"]

#: Tag codes (equal to ``sim.golden.overq``'s; hdl does not import sim).
NORMAL, SHIFTED, RANGE, PREC = 0, 1, 2, 3
#: Allowed activation widths ``b`` (inclusive); fine inputs are ``3b`` bits.
BITS = (2, 8)
#: Largest cascade depth ``D``.
MAX_CASCADE = 8
#: Largest tile (rows of one array column).
MAX_ROWS = 256
#: Chain slots per pipeline stage by default (see the module docstring).
DEFAULT_SLOTS_PER_STAGE = 4


def _check(rows, bits, cascade, precision, slots_per_stage):
    check_range("rows", rows, 1, MAX_ROWS)
    check_range("bits", bits, *BITS)
    check_range("cascade", cascade, 0, MAX_CASCADE)
    if not isinstance(precision, bool):
        raise ValueError(f"precision must be True or False, not {precision!r}")
    check_range("slots_per_stage", slots_per_stage, 1, MAX_ROWS)


class OverQEncode(Elaboratable):
    """Free-running OverQ encoder datapath: one tile in per cycle, its encoding ``latency``
    cycles later. No valid/ready: place it inside a datapath (e.g. a systolic array's input).

    Parameters
    ----------
    rows : int
        Slots per tile ``R``, 1..256.
    bits : int
        Activation width ``b``, 2..8; inputs are ``3b``-bit fine activations.
    cascade : int
        Cascade depth ``D``, 0..8 (0: no range overwrite). ``D >= rows - 1`` behaves as
        ``rows - 1`` (an outlier cannot reach past the tile).
    precision : bool
        Enable precision overwrite.
    slots_per_stage : int
        Chain slots resolved per cycle, 1..256 (more than ``rows``: a single chain stage).

    Attributes
    ----------
    x : Signal(ArrayLayout(3*bits, rows)), in
        Fine activations of one tile.
    values : Signal(ArrayLayout(bits, rows)), out
    tags : Signal(ArrayLayout(2, rows)), out
        ``NORMAL`` 0, ``SHIFTED`` 1, ``RANGE`` 2, ``PREC`` 3.
    valid_in, valid_out : Signal(1)
        A marker travelling with the tile (``valid_out`` is ``valid_in`` delayed by
        :attr:`latency`); optional.
    """

    def __init__(self, rows, bits, cascade, precision, *,
                 slots_per_stage=DEFAULT_SLOTS_PER_STAGE):
        _check(rows, bits, cascade, precision, slots_per_stage)
        self.rows, self.bits, self.cascade, self.precision = rows, bits, cascade, precision
        self.slots_per_stage = slots_per_stage
        self.x = Signal(data.ArrayLayout(unsigned(3 * bits), rows), name="x")
        self.values = Signal(data.ArrayLayout(unsigned(bits), rows), name="values")
        self.tags = Signal(data.ArrayLayout(2, rows), name="tags")
        self.valid_in = Signal(name="valid_in")
        self.valid_out = Signal(name="valid_out")

    @property
    def reach(self):
        """The effective cascade depth ``min(cascade, rows - 1)``."""
        return min(self.cascade, self.rows - 1)

    @property
    def chain_stages(self):
        """Pipeline stages of the range/precision chain: ``ceil(rows / slots_per_stage)``."""
        return -(-self.rows // self.slots_per_stage)

    @property
    def latency(self):
        """Cycles from ``x`` to ``values``/``tags``: the detect and cover stages, the chain
        stages and the value stage, ``chain_stages + 3``."""
        return self.chain_stages + 3

    def elaborate(self, platform):
        m = Module()
        R, b, D, k, S = self.rows, self.bits, self.reach, self.slots_per_stage, self.chain_stages
        half, vmax = 1 << (b - 1), (1 << 2 * b) - 1

        def seg(e):
            return e // k

        # ---- detect stage (registered): per element only --------------------------------------
        # Bit tests, not compares (which synthesis maps to carry chains): zero is xf < 2**(b-1),
        # outlier is xf >= 2**(2b) - 2**(b-1) (bits b-1 .. 2b-1 all set, or any bit from 2b up).
        zero, out, w = [], [], []
        for e in range(R):
            xf = self.x[e]
            is_out = xf[2 * b:].any() | xf[b - 1:2 * b].all()
            c = wire(m, f"det_coarse{e}", (xf + half) >> b)
            zero.append(_register(m, ~xf[b - 1:].any(), f"det_zero{e}"))
            out.append(_register(m, is_out, f"det_outlier{e}"))
            w.append(_register(m, Mux(is_out, Mux(c[2 * b], vmax, c[:2 * b]), xf[:2 * b]),
                               f"det_w{e}"))

        # ---- cover stage (registered): each outlier's cover mask, precision candidates -------
        # Across elements, from registered flags only (a separate stage: these nets fan out over
        # D + 1 elements and limited Fmax when they started at the input).
        pre = []
        for e in range(R):
            fields = {"w": w[e], "out": out[e]}
            if D:
                # therm[j]: slot e+1+j is covered by this outlier's cascade (its nearest zero
                # lies more than j slots down, within reach): d ones, d = that distance.
                reach = min(D, R - 1 - e)
                found = Const(0)
                for j in range(reach, 0, -1):
                    found = found | zero[e + j]
                # Only the first `reach` bits can be set (a cover stays inside the tile).
                therm, beyond = [], out[e] & found
                for j in range(reach):
                    if j:                               # no zero in slots e+1 .. e+j
                        beyond = beyond & ~zero[e + j]
                    therm.append(beyond)
                fields["therm"] = Cat(*therm) if therm else Const(0, 1)
            if self.precision:
                fields["cand"] = ~out[e] & zero[e + 1] if e + 1 < R else Const(0)
            pre.append({name: _register(m, value, f"pre_{name}{e}")
                        for name, value in fields.items()})

        # Delay lines (skew): tap t of a field is its pre register delayed t cycles. Element e
        # feeds the chain of slot e (stage seg(e)) and the value logic of slots e and e+1
        # (stages seg(e) + 1 and seg(e+1) + 1).
        taps = []
        for e in range(R):
            val_stage = seg(min(e + 1, R - 1)) + 1
            need = {"w": val_stage, "out": val_stage, "therm": seg(e), "cand": seg(e)}
            t = {}
            for name, reg in pre[e].items():
                t[name] = [reg]
                if isinstance(reg, Const):
                    t[name] *= need[name] + 1
                    continue
                for n in range(need[name]):
                    r = Signal.like(reg, name=f"{name}{e}_t{n + 1}")
                    m.d.sync += r.eq(t[name][-1])
                    t[name].append(r)
            if D:       # the value stage needs only "handled" (a non-empty cover)
                tm = t["therm"][seg(e)]
                handled = Const(0) if isinstance(tm, Const) else tm[0]
                t["handled"] = [None] * seg(e) + [handled]
                t["handled"].append(_register(m, handled, f"handled{e}_t{seg(e) + 1}"))
            taps.append(t)

        # ---- chain stages: range pass (cover mask) and precision pass (ext), k slots each ----
        busy, free_prev, ext_prev = Const(0, max(D, 1)), Const(1), Const(0)
        flags = []
        for s in range(S):
            if s:       # the chain state, registered between segments (constants stay)
                busy, free_prev, ext_prev = (
                    _register(m, val, f"st{s}_{name}")
                    for name, val in (("busy", busy), ("free", free_prev), ("ext", ext_prev)))
            for i in range(s * k, min(R, (s + 1) * k)):
                if D:
                    free = wire(m, f"c{i}_free", ~busy[0])
                    tm = taps[i]["therm"][s]
                    therm = [tm[j] if j < len(tm) else Const(0) for j in range(D)]
                    busy = wire(m, f"c{i}_busy", Cat(
                        *[Mux(free, therm[j], busy[j + 1]) for j in range(D - 1)],
                        free & therm[D - 1]))
                else:
                    free = Const(1)
                if self.precision:
                    ext = wire(m, f"c{i}_ext", free & taps[i]["cand"][s] & ~ext_prev)
                else:
                    ext = Const(0)
                tag = Mux(~free, Mux(free_prev, RANGE, SHIFTED), Mux(ext_prev, PREC, NORMAL))
                f_tag, f_ext = Signal(2, name=f"f{i}_tag"), Signal(name=f"f{i}_ext")
                m.d.sync += [f_tag.eq(tag), f_ext.eq(ext)]
                flags.append((f_tag, f_ext))
                free_prev, ext_prev = free, ext

        # ---- value stage (one cycle after each segment's chain), then deskew ----------------
        for i, (tag, ext) in enumerate(flags):
            t = seg(i) + 1
            val = self._value(taps[i], taps[i - 1] if i else None, t, tag, ext)
            rv, rt = Signal(b, name=f"r{i}_value"), Signal(2, name=f"r{i}_tag")
            m.d.sync += [rv.eq(val), rt.eq(tag)]
            extra = S - 1 - seg(i)
            m.d.comb += [self.values[i].eq(delay(m, rv, extra, f"r{i}_value")),
                         self.tags[i].eq(delay(m, rt, extra, f"r{i}_tag"))]
        m.d.comb += self.valid_out.eq(delay(m, self.valid_in, self.latency, "valid"))
        return m

    def _value(self, own, above, t, tag, ext):
        """Slot value from its registered tag / ext flag and the ``w`` of its own element and
        the element above (delay-line tap ``t``)."""
        b, M, half = self.bits, (1 << self.bits) - 1, 1 << (self.bits - 1)

        def coarse(w):          # c of a non-outlier from its w (= xf < 2**(2b))
            return (w + half)[b:2 * b]

        w, o = own["w"][t], own["out"][t]
        handled = own["handled"][t] if "handled" in own else Const(0)
        normal = Mux(ext, w[b:2 * b], Mux(o, Mux(handled, w[:b], M), coarse(w)))
        if above is None:
            return normal
        wa, oa = above["w"][t], above["out"][t]
        return Mux(tag == NORMAL, normal,
                   Mux(tag == RANGE, wa[b:2 * b],
                       Mux(tag == PREC, wa[:b], Mux(oa, M, coarse(wa)))))


def _register(m, value, name):
    """``value`` through one ``sync`` register (a constant stays a constant)."""
    if isinstance(value, Const):
        return value
    r = Signal(Value.cast(value).shape(), name=name)
    m.d.sync += r.eq(value)
    return r


class OverQEncoder(wiring.Component):
    """Stream core around :class:`OverQEncode`: one tile per beat, one encoded tile per beat.

    The datapath is free-running; results go through a FIFO and ``i.ready`` falls only when the
    FIFO could not take every tile in flight (:func:`hdl.common.stream_shell.stream_shell`), so
    backpressure on ``o`` never reaches the datapath.

    Parameters
    ----------
    rows, bits, cascade, precision, slots_per_stage
        As :class:`OverQEncode`.

    Members
    -------
    i : In(stream.Signature(StructLayout({"x": ArrayLayout(3*bits, rows)})))
    o : Out(stream.Signature(StructLayout({"values": ArrayLayout(bits, rows),
                                           "tags": ArrayLayout(2, rows)})))
    """

    def __init__(self, rows, bits, cascade, precision, *,
                 slots_per_stage=DEFAULT_SLOTS_PER_STAGE):
        self.encode = OverQEncode(rows, bits, cascade, precision,
                                  slots_per_stage=slots_per_stage)
        self.rows, self.bits, self.cascade, self.precision = rows, bits, cascade, precision
        self.slots_per_stage = slots_per_stage
        # Tiles in flight are bounded by the datapath latency: a FIFO this deep never throttles
        # the input behind an always-ready consumer.
        self.fifo_depth = 1 + self.encode.latency + 4
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "x": data.ArrayLayout(3 * bits, rows)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "values": data.ArrayLayout(bits, rows),
                "tags": data.ArrayLayout(2, rows)}))),
        })

    @property
    def latency(self):
        """Cycles from an input handshake to its output beat valid (no stalls): input register,
        encoder, FIFO."""
        return 1 + self.encode.latency + 1

    @property
    def throughput(self):
        return f"1 tile per cycle ({self.rows} activations in, {self.rows} values + tags out)"

    @property
    def details(self):
        return {"cascade_effective": self.encode.reach,
                "slots_per_stage": self.slots_per_stage,
                "chain_stages": self.encode.chain_stages,
                "encoder_latency": self.encode.latency,
                "result_fifo_depth": self.fifo_depth}

    def elaborate(self, platform):
        m = Module()
        m.submodules.encode = enc = self.encode
        valid, _, _, payload = stream_shell(
            m, self.i, self.o, result_valid=enc.valid_out,
            result=Cat(enc.values.as_value(), enc.tags.as_value()),
            depth=self.fifo_depth, last=1)
        m.d.comb += [enc.x.eq(payload.x), enc.valid_in.eq(valid)]
        return m

