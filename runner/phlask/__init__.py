"""phlask: a polyglot, distributed task runner.

Producers put task envelopes (spec/task.schema.json) on a queue; runners take them off
and run each as its own supervised OS process, in whatever language it is written.
"""

__version__ = "0.1.0"

from .errors import PhlaskError  # noqa: E402
from .producer import Task  # noqa: E402
from .brokers import connect  # noqa: E402

__all__ = ["Task", "PhlaskError", "connect", "__version__"]
