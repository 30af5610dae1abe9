"""Steps: handlers triggered by HTTP routes, queue topics, stream changes and cron."""

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
