"""Steps: handlers triggered by HTTP routes, queue topics, stream changes and cron.

Owns: `step(...)` and its triggers, `FlowContext`, the project loader, the
route table, the step runner (invocation, retries, dead letters, cron) and
its queue transport protocol with the local implementation (transport.py,
queues.py; the Redis one lives in ``storage.redis``).
May import: ``runtime.streams``, ``runtime.storage``, ``actors``,
``runtime.errors``, ``runtime.logs``, ``runtime.state``.
Must never be imported by it: ``server`` and ``app`` — the server reaches
steps through the app (``App.request`` and the route table).
"""

from .clock import RuntimeClock
from .context import FlowContext, TriggerInfo
from .inputs import ApiRequest, ApiResponse, StreamTriggerInput
from .loader import Project, ProjectError, load_project
from .runner import SKIPPED, StepRuntime
from .step import RetryPolicy, Step, StepConfig, step
from .triggers import api, cron, http, queue, stream

__all__ = [
    "ApiRequest", "ApiResponse", "FlowContext", "Project", "ProjectError", "RetryPolicy", "RuntimeClock",
    "SKIPPED", "Step", "StepConfig", "StepRuntime", "StreamTriggerInput", "TriggerInfo",
    "api", "cron", "http", "load_project", "queue", "step", "stream",
]
