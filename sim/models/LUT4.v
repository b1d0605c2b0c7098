// Simulation model of the Lattice ECP5 LUT4 as narrowgen instantiates it (hdl/common/ecp5_mux.py):
// Z = INIT[{D, C, B, A}]. Yosys ships the same behaviour in its ECP5 cell library; this file is
// narrowgen's own.
module LUT4 (
  input A, B, C, D,
  output Z
);
  parameter [15:0] INIT = 16'h0000;

  // A tree of 2:1 selects on D, C, B, A (not an index): an input that does not affect the
  // result gives a known output even while it is still X.
  wire [7:0] by_d = D ? INIT[15:8] : INIT[7:0];
  wire [3:0] by_c = C ? by_d[7:4] : by_d[3:0];
  wire [1:0] by_b = B ? by_c[3:2] : by_c[1:0];
  assign Z = A ? by_b[1] : by_b[0];
endmodule
