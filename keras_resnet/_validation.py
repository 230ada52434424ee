"""Argument checks shared by every module; messages name the argument, the value and what is allowed."""

import numbers
import os


def is_int(value):
    """Whether `value` is an integer (a Python or numpy one), booleans excluded."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value):
    """Whether `value` is a real number, booleans excluded."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_positive_int(value):
    return is_int(value) and value > 0


def one_of(values):
    """`"one of 'a', 'b'"`: the allowed values, as a message names them."""
    return "one of " + ", ".join(repr(value) for value in values)


def require(ok, argument, value, allowed):
    """Raises `ValueError("{argument} must be {allowed}; received {argument}={value!r}")` unless `ok`."""
    if not ok:
        raise ValueError(f"{argument} must be {allowed}; received {argument}={value!r}")


def check_int(argument, value, minimum=1, maximum=None, *, optional=False, context=""):
    """Checks that `value` is an integer in `[minimum, maximum]` (`None` too when `optional`).

    `context` follows the allowed range in the message, e.g. `" for image_size=32"`.
    """
    if optional and value is None:
        return
    if is_int(value) and value >= minimum and (maximum is None or value <= maximum):
        return
    if maximum is not None:
        allowed = f"an integer from {minimum} to {maximum}"
    elif minimum == 1:
        allowed = "a positive integer"
    elif minimum == 0:
        allowed = "a non-negative integer"
    else:
        allowed = f"an integer of at least {minimum}"
    raise ValueError(f"{argument} must be {'None or ' if optional else ''}{allowed}{context}; received {value!r}")


def check_positive_int(argument, value):
    check_int(argument, value, 1)


def check_positive_ints(argument, values, length=None, *, context=""):
    """Checks that `values` is a non-empty sequence of positive integers (of `length` of them when given)."""
    allowed = "a non-empty sequence of positive integers" if length is None else f"{length} positive integers"
    items = tuple(values) if isinstance(values, (list, tuple)) else ()
    if not items or (length is not None and len(items) != length) or not all(map(is_positive_int, items)):
        raise ValueError(f"{argument} must be {allowed}{context}; received {values!r}")


def check_choice(argument, value, allowed):
    if value not in allowed:
        raise ValueError(f"{argument} must be {one_of(allowed)}; received {value!r}")


def check_path(argument, value):
    """Checks that `value` is a non-empty path (a string or an `os.PathLike`)."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ValueError(f"{argument} must be a non-empty path; received {argument}={value!r}")


def check_model(argument, value):
    # Imported here: the architecture table itself needs no backend.
    import keras

    if not isinstance(value, keras.Model):
        raise TypeError(f"{argument} must be a keras.Model; received {value!r}")
