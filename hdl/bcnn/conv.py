"""Streaming binarized 3x3 conv layer: line buffer, XNOR-popcount or separable datapath,
threshold and 2x2 max-pool back end (ALGORITHMS.md §5.3, §6).

Numerics are ``sim.golden.bcnn.layer``: PyTorch cross-correlation, OIHW weights, padding 0 or
+1, output +1 where the integer sum >= the threshold, max-pool on the binarized map (floor on odd
sizes). A bit is 1 for +1 and 0 for -1.
"""

import operator

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hdl.common import check_choice, check_range, is_int, reduce_tree, wire

__all__ = ["BCNNConv", "KINDS", "PIXEL", "WEIGHT", "THRESHOLD", "conv_sum_bits"]

#: Input beat kinds (the ``kind`` field of ``i.payload``).
PIXEL, WEIGHT, THRESHOLD = 0, 1, 2
KINDS = ("pixel", "weight", "threshold")
#: Weight beats per (output channel, input word): full kernels one per tap (row-major ``kr*3+kc``);
#: separable kernels ``u[0..2]`` then ``v[0..2]``.
TAPS = {"full": 9, "separable": 6}


def conv_sum_bits(c_in):
    """Signed width of every conv sum (``|s| <= 9*c_in``) and folded threshold (``<= 9*c_in + 1``);
    equal to ``sim.golden.bcnn.sum_bits``."""
    return (9 * c_in + 1).bit_length() + 1


class BCNNConv(wiring.Component):
    """One binarized 3x3 conv layer over a ``height`` x ``width`` image of ``c_in`` channels.

    Stream protocol (``i``; one beat carries ``word`` channel bits):

    * ``kind = WEIGHT`` beats load the kernels, ``c_out`` x ``ceil(c_in/word)`` x taps beats in
      that order (output channel outermost); bit ``m`` of beat ``(o, j, tap)`` is the weight of
      input channel ``j*word + m``. Taps: ``full`` 9 (``w[o, c, kr, kc]``, row-major),
      ``separable`` 6 (``u[o, c, 0..2]``, then ``v[o, c, 0..2]``).
    * ``kind = THRESHOLD`` beats load ``t[o]`` (field ``t``), one per output channel in order.
    * ``kind = PIXEL`` beats carry the image in raster order, ``ceil(c_in/word)`` beats per pixel.

    A run of weight (threshold) beats starts at output channel 0 whenever a beat of another kind
    came in between. Load them between images: they take effect at once.

    Output (``o``): for each output pixel in raster order (of the pooled map when ``pool``),
    ``ceil(c_out/out_par)`` beats, each with ``out_par`` channels: ``y`` bits, or ``sums`` when
    ``thresholds`` is off. Channels past ``c_out`` in the last group read 0.

    Schedule: per pixel position (with one padding row and column at the far edges) the
    ``ceil(c_in/word)`` input words are read into a 3x3 window (one word per cycle), then every
    (output group, input word) pair takes one cycle through a four-stage pipeline (window
    select, weights registered, per-tap / per-channel terms, partial sum; then accumulate and
    threshold);
    :attr:`cycles_per_image` gives the total without stalls.
    """

    def __init__(self, *, width, height, c_in, c_out, word, out_par, pad=0, pool=False,
                 kernel="full", thresholds=True):
        for name, value in (("width", width), ("height", height), ("c_in", c_in),
                            ("c_out", c_out)):
            check_range(name, value, 1, 4096)
        check_range("word", word, 1, 512)
        check_range("out_par", out_par, 1, c_out)
        if not (is_int(pad) and pad in (0, 1)):
            raise ValueError(f"pad must be 0 or 1, not {pad!r}")
        check_choice("kernel", kernel, tuple(TAPS))
        if pool and (width < 2 or height < 2):
            raise ValueError(f"pool needs width and height >= 2, not {width}x{height}")
        if pool and not thresholds:
            raise ValueError("pool needs thresholds on (pooling applies to the binarized map)")
        self.width, self.height, self.c_in, self.c_out = width, height, c_in, c_out
        self.word, self.out_par, self.pad, self.pool = word, out_par, pad, bool(pool)
        self.kernel, self.thresholds = kernel, bool(thresholds)
        self.words = -(-c_in // word)
        self.groups = -(-c_out // out_par)
        self.taps = TAPS[kernel]
        self.sum_bits = conv_sum_bits(c_in)
        in_layout = data.StructLayout({
            "kind": 2,
            "bits": data.ArrayLayout(1, word),
            "t": signed(self.sum_bits),
        })
        if self.thresholds:
            out_layout = data.StructLayout({"y": data.ArrayLayout(1, out_par)})
        else:
            out_layout = data.StructLayout({"sums": data.ArrayLayout(signed(self.sum_bits),
                                                                     out_par)})
        super().__init__({
            "i": In(stream.Signature(in_layout)),
            "o": Out(stream.Signature(out_layout)),
        })

    @property
    def out_height(self):
        return self.height // 2 if self.pool else self.height

    @property
    def out_width(self):
        return self.width // 2 if self.pool else self.width

    @property
    def cycles_per_image(self):
        """Cycles per image with a never-idle source and an always-ready sink: every position of
        the ``(height+1) x (width+1)`` grid takes ``words + 2`` (one issue cycle, one per input
        word, one hand-off), and each of the ``height x width`` output positions
        ``groups x words + 5`` more (one step per cycle and the four-stage drain)."""
        positions = (self.height + 1) * (self.width + 1)
        outputs = self.height * self.width
        return positions * (self.words + 2) + outputs * (self.groups * self.words + 5)

    @property
    def latency(self):
        """Cycles from taking the input word that completes a window to that window's first
        output beat (no stalls): the load hand-off, the compute start, one issue cycle per input
        word, the four pipeline stages and the output register."""
        return self.words + 6

    @property
    def throughput(self):
        return (f"per pixel: {self.words} input beat(s), then {self.groups} x {self.words} "
                f"datapath step(s) ({self.groups} output beat(s)); {self.cycles_per_image} "
                f"cycles per {self.width}x{self.height} image without stalls")

    @property
    def details(self):
        return {"words_per_pixel": self.words, "groups": self.groups,
                "sum_bits": self.sum_bits, "taps": self.taps,
                "weight_memory_bits": self.weight_bits,
                "cycles_per_image": self.cycles_per_image}

    @property
    def weight_bits(self):
        """Weight memory bits: ``c_out x c_in`` kernels of 9 (full) or 6 (separable) bits,
        stored padded to whole words."""
        return self.groups * self.out_par * self.words * self.word * self.taps

    def elaborate(self, platform):
        m = Module()
        W, H, NW, G, Q, E = (self.width, self.height, self.words, self.groups, self.out_par,
                             self.taps)
        word, SB = self.word, self.sum_bits

        # ---- memories ------------------------------------------------------------------
        # Kernels: one row per (group, input word) holding out_par x taps words.
        m.submodules.weights = wmem = Memory(shape=Q * E * word, depth=G * NW, init=[])
        w_wr = wmem.write_port(granularity=word)
        w_rd = wmem.read_port()
        m.submodules.thresholds = tmem = Memory(shape=Q * SB, depth=G, init=[])
        t_wr = tmem.write_port(granularity=SB)
        t_rd = tmem.read_port()
        # Line buffer: per (column, input word) the two rows above the incoming one.
        m.submodules.lines = lmem = Memory(shape=2 * word, depth=W * NW, init=[])
        l_wr = lmem.write_port()
        l_rd = lmem.read_port()

        beat = self.i.payload
        bits = Cat(*[beat.bits[k] for k in range(word)])

        # ---- weight and threshold loading ----------------------------------------------
        wq, wg = Signal(range(Q), name="w_q"), Signal(range(G), name="w_g")
        wj, we = Signal(range(NW), name="w_j"), Signal(range(E), name="w_tap")
        tq, tg = Signal(range(Q), name="t_q"), Signal(range(G), name="t_g")
        take = Signal()                     # a beat is accepted this cycle
        m.d.comb += take.eq(self.i.valid & self.i.ready)
        is_w = beat.kind == WEIGHT
        is_t = beat.kind == THRESHOLD
        m.d.comb += [
            w_wr.addr.eq(_times(wg, NW) + wj),
            w_wr.data.eq(bits.replicate(Q * E)),
            w_wr.en.eq(Cat(*[take & is_w & (wq == q) & (we == e)
                             for q in range(Q) for e in range(E)])),
            t_wr.addr.eq(tg),
            t_wr.data.eq(beat.t.as_unsigned().replicate(Q)),
            t_wr.en.eq(Cat(*[take & is_t & (tq == q) for q in range(Q)])),
        ]
        with m.If(take):
            with m.If(is_w):
                _advance(m, [(we, E), (wj, NW), (wq, Q), (wg, G)])
            with m.Else():
                m.d.sync += [we.eq(0), wj.eq(0), wq.eq(0), wg.eq(0)]
            with m.If(is_t):
                _advance(m, [(tq, Q), (tg, G)])
            with m.Else():
                m.d.sync += [tq.eq(0), tg.eq(0)]

        # ---- position counters: the (H+1) x (W+1) grid of window positions --------------
        # At grid position (r, c) the window holds input rows r-2..r and columns c-2..c; it
        # is centred on output pixel (r-1, c-1), computed when r >= 1 and c >= 1.
        r, c = Signal(range(H + 1), name="pos_r"), Signal(range(W + 1), name="pos_c")
        real = (r < H) & (c < W)            # an input pixel is due at this position

        # Window: 3 columns x 3 rows x NW words (column 2 is the newest).
        win = [[[Signal(word, name=f"win_c{kc}_r{kr}_w{j}") for j in range(NW)]
                for kr in range(3)] for kc in range(3)]

        # ---- load phase: one word per cycle through the line buffer ---------------------
        # Issue (address) one cycle, consume (read data, input beat) the next.
        loading = Signal(init=1)
        l_issue_j = Signal(range(NW + 1))
        l_cons = Signal()                   # a read for word l_cons_j is valid this cycle
        l_cons_j = Signal(range(NW))
        need_beat = Signal()
        m.d.comb += need_beat.eq(l_cons & real)
        pixel_ok = ~need_beat | (self.i.valid & (beat.kind == PIXEL))
        # The sink takes a beat whenever a pixel word is due; a weight or threshold beat taken
        # then is written to its memory and the word stays due.
        m.d.comb += self.i.ready.eq(need_beat)
        l_step = l_cons & pixel_ok          # the consumed word moves on
        l_hold = l_cons & ~pixel_ok
        m.d.comb += [
            l_rd.addr.eq(_times(Mux(c < W, c, 0), NW) + l_issue_j),
            l_rd.en.eq(~l_hold),
        ]
        # Rows above: from the line buffer (garbage outside the image; masked at compute).
        above0, above1 = l_rd.data[:word], l_rd.data[word:]
        new_row = Mux(r < H, bits, 0)
        m.d.comb += [
            l_wr.addr.eq(_times(Mux(c < W, c, 0), NW) + l_cons_j),
            l_wr.data.eq(Cat(above1, new_row)),
            l_wr.en.eq(l_step & (c < W)),
        ]
        with m.If(loading):
            with m.If(~l_hold):
                m.d.sync += [l_cons.eq(l_issue_j < NW), l_cons_j.eq(l_issue_j)]
                with m.If(l_issue_j < NW):
                    m.d.sync += l_issue_j.eq(l_issue_j + 1)
            with m.If(l_step):
                for j in range(NW):
                    with m.If(l_cons_j == j):
                        for kr in range(3):
                            m.d.sync += [win[0][kr][j].eq(win[1][kr][j]),
                                         win[1][kr][j].eq(win[2][kr][j])]
                        m.d.sync += [win[2][0][j].eq(above0), win[2][1][j].eq(above1),
                                     win[2][2][j].eq(new_row)]
            with m.If(l_step & (l_cons_j == NW - 1)):
                m.d.sync += [l_cons.eq(0), l_issue_j.eq(0), loading.eq(0)]

        # ---- compute phase: one (group, word) step per cycle ----------------------------
        computing = Signal()
        with m.If(~loading & ~computing):
            # The load of position (r, c) just finished.
            with m.If((r >= 1) & (c >= 1)):
                m.d.sync += computing.eq(1)
            with m.Else():
                _next_position(m, r, c, H, W, loading)

        # Edge validity of the window rows / columns (input rows r-2..r, columns c-2..c).
        row_ok = [r >= 2, Const(1), r < H]
        col_ok = [c >= 2, Const(1), c < W]

        # The steps run through a stall-enabled pipeline (every register below moves on `adv`):
        #   issue  - memory addresses; the window words of the step's input word selected
        #   s1     - memory data out; s2 - the weights registered beside the taps
        #   s2 -> s3  per-tap popcounts (full) or per-channel 3x3 sums (separable)
        #   s3 -> s4  the step's partial sums over the word
        #   s4     - accumulate over the input words, threshold, pool, output register
        # Only the output register can stall it (o.ready low when a result is due).
        c_issue = Signal(range(G * NW + 1))      # next (group, word) step to address
        issue_g = Signal(range(G + 1), name="issue_g")
        issue_j = Signal(range(NW + 1), name="issue_j")
        more = computing & (c_issue < G * NW)

        def ctl(n):
            return {"valid": Signal(name=f"s{n}_valid"), "g": Signal(range(G), name=f"s{n}_g"),
                    "j": Signal(range(NW), name=f"s{n}_j")}
        s1, s2, s3, s4 = ctl(1), ctl(2), ctl(3), ctl(4)
        out_free = ~self.o.valid | self.o.ready
        needs_slot = Signal()
        emit = s4["j"] == NW - 1                 # the step ends its group's sum
        stall = s4["valid"] & emit & needs_slot & ~out_free
        adv = Signal()
        m.d.comb += adv.eq(~stall)
        m.d.comb += [
            w_rd.addr.eq(c_issue),              # = issue_g * NW + issue_j
            w_rd.en.eq(adv),
            t_rd.addr.eq(issue_g),
            t_rd.en.eq(adv),
        ]
        with m.If(adv):
            m.d.sync += [s1["valid"].eq(more), s1["g"].eq(issue_g), s1["j"].eq(issue_j)]
            for dst, src in ((s2, s1), (s3, s2), (s4, s3)):
                m.d.sync += [dst[k].eq(src[k]) for k in dst]
            with m.If(more):
                m.d.sync += c_issue.eq(c_issue + 1)
                with m.If(issue_j == NW - 1):
                    m.d.sync += [issue_j.eq(0), issue_g.eq(issue_g + 1)]
                with m.Else():
                    m.d.sync += issue_j.eq(issue_j + 1)
            with m.Elif(computing & ~s1["valid"] & ~s2["valid"] & ~s3["valid"] & ~s4["valid"]):
                # Every step issued and through the pipeline: next position.
                m.d.sync += [computing.eq(0), c_issue.eq(0), issue_g.eq(0), issue_j.eq(0)]
                _next_position(m, r, c, H, W, loading)

        # Issue stage: the window's words for input word issue_j, with the edge masks applied.
        # The channel mask is a Mux, not an Array of constants: Yosys writes the latter as an
        # always @* case that Icarus never evaluates while the index keeps its initial value.
        last_mask = Const(sum(1 << b for b in range(word) if (NW - 1) * word + b < self.c_in),
                          word)
        ones = Const((1 << word) - 1, word)
        chan_ok = wire(m, "chan_ok", Mux(issue_j == NW - 1, last_mask, ones))
        tap_ok, tap_val = {}, {}
        for kr in range(3):
            for kc in range(3):
                x = wire(m, f"tap{kr}{kc}_x", Array(win[kc][kr])[issue_j[:max(1, (NW - 1)
                                                                               .bit_length())]])
                inside = row_ok[kr] & col_ok[kc]
                val = Signal(word, name=f"s1_tap{kr}{kc}", reset_less=True)
                ok = Signal(word, name=f"s1_tap{kr}{kc}_ok", reset_less=True)
                if self.pad:        # +1 padding: an outside pixel is +1 and counts
                    nxt_val, nxt_ok = Mux(inside, x, ones), chan_ok
                else:               # zero padding: an outside pixel contributes nothing
                    nxt_val, nxt_ok = x, Mux(inside, chan_ok, 0)
                with m.If(adv):
                    m.d.sync += [val.eq(nxt_val), ok.eq(nxt_ok)]
                tap_val[kr, kc], tap_ok[kr, kc] = val, ok

        # s1 -> s2 -> s3: the partial sums of the out_par channels of group g over word j.
        # s2: the weight memory's output registered (synthesis can fold it into the block RAM's
        # output register: its clock-to-out is otherwise most of a cycle) and the taps beside it.
        weights = Signal(len(w_rd.data), name="s2_weights", reset_less=True)
        taps2_val = {t: Signal(word, name=f"s2_tap{t[0]}{t[1]}", reset_less=True) for t in tap_val}
        taps2_ok = {t: Signal(word, name=f"s2_tap{t[0]}{t[1]}_ok", reset_less=True) for t in tap_ok}
        with m.If(adv):
            m.d.sync += weights.eq(w_rd.data)
            m.d.sync += [taps2_val[t].eq(tap_val[t]) for t in tap_val]
            m.d.sync += [taps2_ok[t].eq(tap_ok[t]) for t in tap_ok]
        tap_val, tap_ok = taps2_val, taps2_ok
        if self.kernel == "full":
            partial = self._full(m, tap_val, tap_ok, weights, adv)
        else:
            partial = self._separable(m, tap_val, tap_ok, weights, adv)
        thr2 = [Signal(signed(SB), name=f"s2_t{q}", reset_less=True) for q in range(Q)]
        thr3 = [Signal(signed(SB), name=f"s3_t{q}", reset_less=True) for q in range(Q)]
        thr4 = [Signal(signed(SB), name=f"s4_t{q}", reset_less=True) for q in range(Q)]
        with m.If(adv):
            m.d.sync += [t.eq(t_rd.data.word_select(q, SB).as_signed())
                         for q, t in enumerate(thr2)]
            m.d.sync += [t3.eq(t2) for t2, t3 in zip(thr2, thr3)]
            m.d.sync += [t4.eq(t3) for t3, t4 in zip(thr3, thr4)]

        # s3: accumulate over the input words, threshold.
        acc = [Signal(signed(SB), name=f"acc{q}") for q in range(Q)]
        total = [Signal(signed(SB), name=f"total{q}") for q in range(Q)]
        for q in range(Q):
            m.d.comb += total[q].eq(Mux(s4["j"] == 0, 0, acc[q]) + partial[q])
        c_g = s4["g"]
        chan_valid = [_times(c_g, Q) + q < self.c_out for q in range(Q)]
        y = Cat(*[(total[q] >= thr4[q]) & chan_valid[q] for q in range(Q)])
        c_cons = s4["valid"]
        pooled = Signal(Q)

        # Output pixel (r-1, c-1) and, with pooling, its place in the 2x2 window.
        orow, ocol = r - 1, c - 1
        if self.pool:
            PW = W // 2
            m.submodules.pool = pmem = Memory(shape=Q, depth=max(1, PW * G), init=[])
            p_rd = pmem.read_port(domain="comb")
            p_wr = pmem.write_port()
            kept = (orow < 2 * (H // 2)) & (ocol < 2 * (W // 2))
            p_addr = _times(ocol >> 1, G) + c_g
            first = ~orow[0] & ~ocol[0]
            m.d.comb += [
                p_rd.addr.eq(p_addr), p_wr.addr.eq(p_addr),
                pooled.eq(Mux(first, y, p_rd.data | y)),
                p_wr.data.eq(pooled),
                needs_slot.eq(kept & orow[0] & ocol[0]),
                p_wr.en.eq(c_cons & emit & kept & ~(orow[0] & ocol[0])),
            ]
            out_y = pooled
        else:
            m.d.comb += needs_slot.eq(1)
            out_y = y

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(c_cons & ~stall):
            for q in range(Q):
                m.d.sync += acc[q].eq(total[q])
            with m.If(emit & needs_slot):
                m.d.sync += self.o.valid.eq(1)
                if self.thresholds:
                    m.d.sync += self.o.payload.y.as_value().eq(out_y)
                else:
                    for q in range(Q):
                        m.d.sync += self.o.payload.sums[q].eq(
                            Mux(chan_valid[q], total[q], 0))
        return m

    def _full(self, m, tap_val, tap_ok, weights, adv):
        """XNOR-popcount partial sums: s2 -> s3 registers each tap's agreement count per output
        channel (and the count of taps that count at all), s3 -> s4 the partial sum
        ``2 * agreements - counted`` over the 9 taps."""
        word, Q, E, SB = self.word, self.out_par, self.taps, self.sum_bits
        taps = [(kr, kc) for kr in range(3) for kc in range(3)]
        counted = Signal(range(9 * word + 1), name="s3_counted", reset_less=True)
        pops = [[Signal(range(word + 1), name=f"s3_pop{q}_{kr}{kc}", reset_less=True)
                 for kr, kc in taps] for q in range(Q)]
        partial = [Signal(signed(SB), name=f"s4_partial{q}", reset_less=True) for q in range(Q)]
        # Comb nodes outside the enable: an assignment inside m.If would gate them with it.
        ok_count = _tree_sum([_popcount(m, f"ok{kr}{kc}", tap_ok[kr, kc]) for kr, kc in taps])
        agree = [[_popcount(m, f"agree{q}_{kr}{kc}",
                            ~(tap_val[kr, kc] ^ weights.word_select(q * E + kr * 3 + kc, word))
                            & tap_ok[kr, kc]) for kr, kc in taps] for q in range(Q)]
        with m.If(adv):
            m.d.sync += counted.eq(ok_count)
            for q in range(Q):
                m.d.sync += [pop.eq(a) for pop, a in zip(pops[q], agree[q])]
                m.d.sync += partial[q].eq((_tree_sum(pops[q]) << 1).as_signed() - counted)
        return partial

    def _separable(self, m, tap_val, tap_ok, weights, adv):
        """Partial sums of the separable kernels ``outer(u, v)``: vertical 3x1 sums shared by
        all outputs (four sign patterns per column and channel), then per output the pattern
        its ``u`` selects and the horizontal 1x3 sum with ``v``, registered per channel
        (s2 -> s3); the sum over the word's channels is registered at s4."""
        word, Q, E, SB = self.word, self.out_par, self.taps, self.sum_bits

        def val(kr, kc, b):          # -1, 0 or +1 as a signed 2-bit value
            return Mux(tap_ok[kr, kc][b], Mux(tap_val[kr, kc][b], 1, -1), 0)

        # shared[kc][b][p]: a0 + s1*a1 + s2*a2 with (s1, s2) = pattern p (bit set: -1).
        shared = []
        for kc in range(3):
            per_chan = []
            for b in range(word):
                a = [val(kr, kc, b) for kr in range(3)]
                pats = []
                for p in range(4):
                    s = Signal(signed(3), name=f"vsum_c{kc}_b{b}_p{p}")
                    m.d.comb += s.eq(a[0] + (-a[1] if p & 1 else a[1]) + (-a[2] if p & 2 else a[2]))
                    pats.append(s)
                per_chan.append(Array(pats))
            shared.append(per_chan)
        partial = []
        for q in range(Q):
            u = [weights.word_select(q * E + k, word) for k in range(3)]
            v = [weights.word_select(q * E + 3 + k, word) for k in range(3)]
            terms = []
            for b in range(word):
                # u = u0 * (1, u0*u1, u0*u2): the pattern bits are "differs from u0".
                pat = Cat(u[1][b] ^ u[0][b], u[2][b] ^ u[0][b])
                y = 0
                for kc in range(3):
                    t = wire(m, f"vsel_q{q}_c{kc}_b{b}", shared[kc][b][pat])
                    # v[kc] * u0 * t: negate when exactly one of them is -1 (bit 0).
                    neg = u[0][b] ^ v[kc][b]
                    y = y + Mux(neg, -t, t)
                term = Signal(signed(5), name=f"s3_hsum_q{q}_b{b}", reset_less=True)
                with m.If(adv):
                    m.d.sync += term.eq(y)
                terms.append(term)
            s = Signal(signed(SB), name=f"s4_partial{q}", reset_less=True)
            with m.If(adv):
                m.d.sync += s.eq(_tree_sum(terms))
            partial.append(s)
        return partial


def _advance(m, counters):
    """Increment a mixed-radix counter, least significant first; wraps to all zeros."""
    carry = Const(1)
    for sig, radix in counters:
        wrap = sig == radix - 1
        with m.If(carry):
            m.d.sync += sig.eq(Mux(wrap, 0, sig + 1))
        carry = carry & wrap


def _next_position(m, r, c, H, W, loading):
    m.d.sync += loading.eq(1)
    with m.If(c == W):
        m.d.sync += c.eq(0)
        m.d.sync += r.eq(Mux(r == H, 0, r + 1))
    with m.Else():
        m.d.sync += c.eq(c + 1)


def _times(value, k):
    """``value * k`` for a constant ``k`` as shifts and adds, so synthesis never spends a DSP
    multiplier on an address."""
    terms = [value << b for b in range(k.bit_length()) if k >> b & 1]
    return _tree_sum(terms)


def _popcount(m, name, value):
    bits = wire(m, f"{name}_bits", value)
    s = Signal(range(len(value) + 1), name=f"{name}_pop")
    m.d.comb += s.eq(_tree_sum([bits[k] for k in range(len(bits))]))
    return s


def _tree_sum(terms):
    return reduce_tree(operator.add, terms)
