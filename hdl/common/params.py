"""Constructor-argument checks shared by the generators.

Every check raises ``ValueError`` naming the parameter, quoting the bad value and listing the
allowed set, before any hardware is built.
"""

from hdl.formats import MX_FORMATS, MXFormat

__all__ = ["check_choice", "check_lanes", "check_mx_format", "check_power_of_two", "check_range",
           "is_int", "is_power_of_two"]


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_power_of_two(value):
    """``value`` is an int 1, 2, 4, ..."""
    return is_int(value) and value > 0 and value & (value - 1) == 0


def check_choice(name, value, allowed):
    """Return ``value`` if it is one of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"{name} must be one of {', '.join(repr(a) for a in allowed)}; not {value!r}")
    return value


def check_range(name, value, lo, hi):
    """Return ``value`` if it is an integer in ``lo..hi``."""
    if not (is_int(value) and lo <= value <= hi):
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
    return value


def check_power_of_two(name, value, lo, hi):
    """Return ``value`` if it is a power of two in ``lo..hi``."""
    if not (is_power_of_two(value) and lo <= value <= hi):
        raise ValueError(f"{name} must be a power of two in {lo}..{hi}, not {value!r}")
    return value


def check_lanes(lanes, block_size, *, name="lanes"):
    """Return ``lanes`` (``block_size`` when ``None``) if it is a power of two dividing
    ``block_size``."""
    if lanes is None:
        return block_size
    if not (is_power_of_two(lanes) and lanes <= block_size):   # block_size is a power of two
        allowed = ", ".join(str(1 << k) for k in range(block_size.bit_length()))
        raise ValueError(
            f"{name} must be a power of two that divides block_size ({block_size}): "
            f"{allowed}; not {lanes!r}")
    return lanes


def check_mx_format(fmt, *, name="fmt"):
    """Return the :class:`MXFormat` named by ``fmt`` (a name or one of ``MX_FORMATS``)."""
    if isinstance(fmt, MXFormat) and fmt in MX_FORMATS.values():
        return fmt
    if isinstance(fmt, str) and fmt in MX_FORMATS:
        return MX_FORMATS[fmt]
    raise ValueError(f"{name} must be one of {', '.join(MX_FORMATS)}; not {fmt!r}")
