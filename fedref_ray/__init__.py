"""fedref-ray: a Ray-based federated-learning simulator built around FedRef.

`fedref_ray.run(config, overrides)` runs one experiment and `fedref_ray.sweep(sweep_file)` a Tune
search; `Algorithm` and its parts are the interface for algorithms of your own. Importing the
package is light: torch and Ray load only when a run starts.
"""

from fedref_ray.algorithms.base import Aggregate, Algorithm, ClientContext, ClientHalf, ClientResult, ServerUpdate
from fedref_ray.api import RunResult, SweepResult, run, sweep
from fedref_ray.config import ExperimentConfig, load_config
from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.errors import RunInterrupted, UserError

__version__ = "0.1.0"

__all__ = [
    "Aggregate",
    "Algorithm",
    "ClientContext",
    "ClientHalf",
    "ClientResult",
    "DatasetArrays",
    "ExperimentConfig",
    "RunInterrupted",
    "RunResult",
    "ServerUpdate",
    "SweepResult",
    "UserError",
    "load_config",
    "run",
    "sweep",
]
