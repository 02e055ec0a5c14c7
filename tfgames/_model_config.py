"""GameModel's automatic config: the constructor's arguments recorded, serialized and passed
back, and every subclass registered with Keras.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import keras

__all__ = [
    "BASE_CONFIG_KEYS",
    "accepts",
    "bound_arguments",
    "has_var_keyword",
    "init_needs_arguments",
    "is_serialized_object",
    "register",
]

# Arguments every GameModel config holds already (keras.Model's and GameModel's own).
BASE_CONFIG_KEYS = ("name", "trainable", "dtype", "seed")


def bound_arguments(cls: type, args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """``cls(*args, **kwargs)``'s arguments by name (``**kwargs`` expanded), or None."""
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except TypeError:
        return None
    spec = inspect.getfullargspec(cls.__init__)
    arguments = dict(bound.arguments)
    arguments.pop(spec.args[0], None)  # self
    if spec.varargs is not None and arguments.pop(spec.varargs, ()):
        return None  # *args cannot be passed back by name
    if spec.varkw is not None:
        arguments.update(arguments.pop(spec.varkw, {}))
    return arguments


def register(cls: type) -> None:
    """Register a GameModel subclass with Keras as ``"<module>><qualified name>"``.

    ``keras.models.load_model`` then finds it without ``custom_objects`` in any process that
    defined it (classes defined in functions and notebooks included). A class redefined under
    the same name replaces the earlier one; ``@keras.saving.register_keras_serializable``
    applied by the user afterwards takes precedence.
    """
    keras.saving.register_keras_serializable(package=cls.__module__, name=cls.__qualname__)(cls)


def accepts(function: Any, parameter: str) -> bool:
    """Whether ``function`` has a parameter named ``parameter`` (False when unknowable)."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return parameter in parameters


def has_var_keyword(cls: type) -> bool:
    """Whether ``cls.__init__`` takes ``**kwargs``."""
    return inspect.getfullargspec(cls.__init__).varkw is not None


def init_needs_arguments(cls: type) -> bool:
    """Whether ``cls.__init__`` has a required parameter (besides self)."""
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return any(
        p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        for p in parameters
    )


def is_serialized_object(value: Any) -> bool:
    """A dict (or list of dicts) written by ``keras.saving.serialize_keras_object``."""
    if isinstance(value, (list, tuple)):
        return any(is_serialized_object(v) for v in value)
    if not isinstance(value, Mapping):
        return False
    if "class_name" in value and "config" in value:
        return True
    return any(is_serialized_object(v) for v in value.values())
