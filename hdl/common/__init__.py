"""Reusable datapath pieces shared by the generators."""

from .fp32 import FP32Add, RoundToFP32
from .leading_zeros import LeadingZeroCount, count_leading_zeros
from .params import (
    check_choice,
    check_lanes,
    check_mx_format,
    check_power_of_two,
    check_range,
    is_int,
    is_power_of_two,
)
from .pipeline import block_throughput, pipeline_stage
from .tree import max_tree, reduce_tree
from .wire import wire

__all__ = [
    "LeadingZeroCount",
    "block_throughput",
    "check_choice",
    "check_lanes",
    "check_mx_format",
    "check_power_of_two",
    "check_range",
    "count_leading_zeros",
    "is_int",
    "is_power_of_two",
    "max_tree",
    "pipeline_stage",
    "reduce_tree",
    "wire",
    "FP32Add",
    "RoundToFP32",
]
