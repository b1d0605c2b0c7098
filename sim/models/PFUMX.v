// Simulation model of the Lattice ECP5 PFUMX, the slice's mux of its two LUT4 outputs, as
// narrowgen instantiates it (hdl/common/ecp5_mux.py): Z = C0 ? ALUT : BLUT. Yosys ships the same
// behaviour in its ECP5 cell library; this file is narrowgen's own.
module PFUMX (
  input ALUT, BLUT, C0,
  output Z
);
  assign Z = C0 ? ALUT : BLUT;
endmodule
