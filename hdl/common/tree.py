"""Balanced reduction trees."""

from amaranth.hdl import Mux, Value

__all__ = ["max_tree", "reduce_tree"]


def reduce_tree(function, values):
    """Combine ``values`` pairwise with ``function`` in a balanced tree (depth ``ceil(log2 n)``)."""
    values = list(values)
    if not values:
        raise ValueError("values must not be empty")
    while len(values) > 1:
        paired = [function(a, b) for a, b in zip(values[0::2], values[1::2])]
        if len(values) % 2:
            paired.append(values[-1])
        values = paired
    return values[0]


def max_tree(values):
    """Maximum of ``values`` (unsigned or signed, as their shapes say) as a comparator tree."""
    return reduce_tree(lambda a, b: Mux(a > b, a, b), (Value.cast(v) for v in values))
