"""Argument checks shared by every module; messages name the argument, the value and what is allowed."""


def is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_positive_int(argument, value):
    if not is_positive_int(value):
        raise ValueError(f"{argument} must be a positive integer; received {value!r}")


def check_choice(argument, value, allowed):
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{argument} must be one of {choices}; received {value!r}")


def check_model(argument, value):
    # Imported here: the architecture table itself needs no backend.
    import keras

    if not isinstance(value, keras.Model):
        raise TypeError(f"{argument} must be a keras.Model; received {value!r}")
