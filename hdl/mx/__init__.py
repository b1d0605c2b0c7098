"""OCP MX block family: FP32 ↔ MX conversion (MX_SPEC §2–§4, §11)."""

from .dequantize import ElementDecoder, MXDequantize
from .quantize import ROUNDINGS, ElementQuantizer, MXQuantize

__all__ = ["ROUNDINGS", "ElementDecoder", "ElementQuantizer", "MXDequantize", "MXQuantize"]
