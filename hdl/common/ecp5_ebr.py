"""A simple dual-port RAM in ECP5 ``DP16KD`` block RAMs with the read side's output register in use.

Yosys maps a memory to DP16KD with ``REGMODE = "NOREG"`` only, so the read data leaves the
block RAM straight from its array: 6.5 ns clock-to-output in nextpnr's model, which was the
critical path of the FP8 x FP8 pairs when mx-dot's result FIFO went to block RAM. With
``REGMODE_B = "OUTREG"`` the data comes from the block's own output register, one cycle later,
and the block takes the place of a LUT-RAM FIFO's bank read mux and output register (one or
two LUT4s per bit).

Each block is a 1024 x 18 true dual-port DP16KD used as write port A and read port B; a wider
word takes more blocks side by side.

Simulation uses ``sim/models/DP16KD.v``.
"""

from amaranth.hdl import ClockSignal, Const, Instance, Signal

__all__ = ["EBR_DEPTH", "ebr_ram"]

#: Entries of one block at 18 bits per entry.
EBR_DEPTH = 1024
#: Bits per block at that depth.
_EBR_WIDTH = 18


def ebr_ram(m, width, name, *, w_addr, w_data, w_en, r_addr, r_en):
    """A ``width``-bit RAM of :data:`EBR_DEPTH` entries. A write of ``w_data`` at ``w_addr``
    happens at the clock edge where ``w_en`` is high. The read is a two-stage pipeline that
    ``r_en`` advances: at an edge with ``r_en`` high the block registers ``r_addr`` and moves the
    entry at the address it held into its output register; with ``r_en`` low both hold. Returns
    the output register's value. A read of an entry written at the same edge is undefined."""
    if not 1 <= len(w_addr) <= 10 or len(r_addr) != len(w_addr):
        raise ValueError(f"ebr_ram addresses must be 1..10 bits wide and equal, not "
                         f"{len(w_addr)} and {len(r_addr)}")
    data = Signal(width, name=f"{name}_rdata")
    pad = 10 - len(w_addr)
    for k, lo in enumerate(range(0, width, _EBR_WIDTH)):
        hi = min(lo + _EBR_WIDTH, width)
        ports = {
            "p_DATA_WIDTH_A": _EBR_WIDTH, "p_DATA_WIDTH_B": _EBR_WIDTH,
            "p_REGMODE_A": "NOREG", "p_REGMODE_B": "OUTREG",
            "p_WRITEMODE_A": "NORMAL", "p_WRITEMODE_B": "NORMAL",
            "p_RESETMODE": "SYNC", "p_CSDECODE_A": "0b000", "p_CSDECODE_B": "0b000",
            "p_GSR": "DISABLED",
            "i_CLKA": ClockSignal(), "i_CEA": Const(1), "i_OCEA": Const(1), "i_RSTA": Const(0),
            "i_WEA": w_en, "i_CLKB": ClockSignal(), "i_CEB": r_en, "i_OCEB": r_en,
            "i_RSTB": Const(0), "i_WEB": Const(0),
        }
        for cs in range(3):
            ports[f"i_CSA{cs}"] = ports[f"i_CSB{cs}"] = Const(0)
        # At 18 bits per entry the address is AD[13:4]; AD[1:0] of the write port are its two
        # byte enables, AD[3:2] unused.
        w_full = [Const(1), Const(1), Const(0), Const(0),
                  *(w_addr[i] for i in range(len(w_addr))), *[Const(0)] * pad]
        r_full = [Const(0)] * 4 + [*(r_addr[i] for i in range(len(r_addr))), *[Const(0)] * pad]
        for b in range(14):
            ports[f"i_ADA{b}"] = w_full[b]
            ports[f"i_ADB{b}"] = r_full[b]
        for b in range(_EBR_WIDTH):
            ports[f"i_DIA{b}"] = w_data[lo + b] if lo + b < hi else Const(0)
            ports[f"i_DIB{b}"] = Const(0)
            if lo + b < hi:
                ports[f"o_DOB{b}"] = data[lo + b]
        m.submodules[f"{name}_ebr{k}"] = Instance("DP16KD", **ports)
    return data
