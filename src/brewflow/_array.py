"""Deprecated alias of :mod:`brewflow.arrays` (the public name); kept so old analyses import."""

from brewflow.arrays import *  # noqa: F403
from brewflow.arrays import __all__  # noqa: F401
