// Simulation model of the Lattice ECP5 CCU2C (two carry-chain LUT halves) as narrowgen uses it
// (hdl/common/ecp5_carry.py): INJECT1_0 = INJECT1_1 = "NO". Each half has a LUT4 giving the
// propagate P = INIT[{D, C, B, A}] and a LUT2 giving the generate G = INIT[{0, 0, B, A}]; its sum
// is P ^ carry-in and its carry-out is the carry-in when P is 1, else G. Yosys ships the same
// behaviour in its ECP5 cell library; this file is narrowgen's own. Any INJECT1 other than "NO"
// stops the simulation, so the model is never used outside what it describes.
module CCU2C (
  input CIN, A0, B0, C0, D0, A1, B1, C1, D1,
  output S0, S1, COUT
);
  parameter [15:0] INIT0 = 16'h0000;
  parameter [15:0] INIT1 = 16'h0000;
  parameter INJECT1_0 = "YES";
  parameter INJECT1_1 = "YES";

  initial begin
    if (INJECT1_0 != "NO" || INJECT1_1 != "NO") begin
      $display("CCU2C model: only INJECT1_0 = INJECT1_1 = \"NO\" is modelled");
      $finish;
    end
  end

  // A LUT as a tree of 2:1 selects on D, C, B, A (not an index): an input that does not affect
  // the result (here: A while C clears it) gives a known output even while it is still X.
  function lut4(input [15:0] init, input a, input b, input c, input d);
    reg [7:0] by_d;
    reg [3:0] by_c;
    reg [1:0] by_b;
    begin
      by_d = d ? init[15:8] : init[7:0];
      by_c = c ? by_d[7:4] : by_d[3:0];
      by_b = b ? by_c[3:2] : by_c[1:0];
      lut4 = a ? by_b[1] : by_b[0];
    end
  endfunction

  wire p0 = lut4(INIT0, A0, B0, C0, D0);
  wire g0 = lut4(INIT0, A0, B0, 1'b0, 1'b0);
  wire c1 = p0 ? CIN : g0;
  wire p1 = lut4(INIT1, A1, B1, C1, D1);
  wire g1 = lut4(INIT1, A1, B1, 1'b0, 1'b0);
  assign S0 = p0 ^ CIN;
  assign S1 = p1 ^ c1;
  assign COUT = p1 ? c1 : g1;
endmodule
