"""The graded parts: one module per part, each a ``Part`` subclass (see ``base.py``)."""
from .base import CheckSpec, FunctionPart, Part, Prepared, Probe
from .corr2d import Corr2d
from .pool2d import Pool2d
from .residual import Residual
from .residual_training import ResidualTraining

__all__ = ["Part", "Prepared", "FunctionPart", "CheckSpec", "Probe", "Corr2d", "Pool2d", "Residual",
           "ResidualTraining"]
