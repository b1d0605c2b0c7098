"""Bit-exact numpy golden models (numeric contract: ``MX_SPEC.md`` §1-§7, §11).

Imports only numpy, the standard library and ``hdl.formats`` (never amaranth or cocotb).
"""
