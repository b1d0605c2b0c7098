// Simulation model of the Lattice ECP5 DP16KD for the one configuration narrowgen emits
// (hdl/common/ecp5_ebr.py): 1024 x 18 on both ports, port A writes (its byte enables AD[1:0]
// both high, WEB = 0), port B reads with its output register (REGMODE_B = "OUTREG"), chip
// selects and resets unused. Yosys ships only a blackbox for this primitive. Per the ECP5 memory
// usage guide (FPGA-TN-02204) the read takes two clock edges with the output register: CEB
// clocks the address into the block, OCEB the addressed word into the output register. The
// output register starts at 0. Any other parameter value stops the simulation, so the model is
// never used outside what it describes. Only the ports narrowgen connects are declared.
module DP16KD (
  input DIA0, DIA1, DIA2, DIA3, DIA4, DIA5, DIA6, DIA7, DIA8, DIA9, DIA10, DIA11, DIA12, DIA13, DIA14, DIA15, DIA16, DIA17,
  input ADA0, ADA1, ADA2, ADA3, ADA4, ADA5, ADA6, ADA7, ADA8, ADA9, ADA10, ADA11, ADA12, ADA13,
  input CEA, OCEA, CLKA, WEA, CSA0, CSA1, CSA2, RSTA,
  input DIB0, DIB1, DIB2, DIB3, DIB4, DIB5, DIB6, DIB7, DIB8, DIB9, DIB10, DIB11, DIB12, DIB13, DIB14, DIB15, DIB16, DIB17,
  input ADB0, ADB1, ADB2, ADB3, ADB4, ADB5, ADB6, ADB7, ADB8, ADB9, ADB10, ADB11, ADB12, ADB13,
  input CEB, OCEB, CLKB, WEB, CSB0, CSB1, CSB2, RSTB,
  output DOB0, DOB1, DOB2, DOB3, DOB4, DOB5, DOB6, DOB7, DOB8, DOB9, DOB10, DOB11, DOB12, DOB13, DOB14, DOB15, DOB16, DOB17
);
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter RESETMODE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter GSR = "ENABLED";

  initial begin
    if (DATA_WIDTH_A != 18 || DATA_WIDTH_B != 18 || REGMODE_B != "OUTREG" ||
        CSDECODE_A != "0b000" || CSDECODE_B != "0b000") begin
      $display("DP16KD model: only DATA_WIDTH_A/B = 18, REGMODE_B = OUTREG, ",
               "CSDECODE_A/B = 0b000 is modelled");
      $finish;
    end
  end

  wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
  wire [9:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4};
  wire [9:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4};
  reg [17:0] mem [0:1023];
  reg [9:0] adb_r = 10'd0;
  reg [17:0] dob_r = 18'd0;

  always @(posedge CLKA) begin
    if (CEA && WEA) begin
      if (!(ADA0 && ADA1) || CSA0 || CSA1 || CSA2 || RSTA) begin
        $display("DP16KD model: a write needs both byte enables, no chip select and no reset");
        $finish;
      end
      mem[ada] <= dia;
    end
  end

  always @(posedge CLKB) begin
    if (WEB || CSB0 || CSB1 || CSB2 || RSTB) begin
      $display("DP16KD model: port B only reads, with no chip select and no reset");
      $finish;
    end
    if (CEB) adb_r <= adb;
    if (OCEB) dob_r <= mem[adb_r];
  end

  assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob_r;
endmodule
