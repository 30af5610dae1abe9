"""Discover a project's steps and streams, and refuse a broken project at startup.

Every ``*_step.py`` and ``*_stream.py`` under the project directory
(recursively; hidden folders, ``.runtime/``, ``node_modules`` and virtual
environments skipped) is imported under its dotted path relative to the
directory, with the directory on ``sys.path``, so step files can import
stream modules and helpers. ``runtime_config.py`` at the root may define
app-level hooks (``authenticate``).

Every problem found is reported at once, each with its file (and line, for
an import error), so a user fixes them in one pass: a `ProjectError`.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import croniter

from ..streams.config import StreamConfig
from ..streams.stream import Stream
from .step import Step, handler_arity
from .triggers import CronTrigger, HttpTrigger, StreamTrigger

__all__ = ["Project", "ProjectError", "load_project", "discover_files", "collect"]

_SKIP_DIRS = {".runtime", "node_modules", "__pycache__", "site-packages", "venv", ".venv", "env"}


class ProjectError(Exception):
    """The project cannot start; ``problems`` lists ``(file, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = [f"{file}: {message}" if file else message for file, message in problems]
        super().__init__("the project cannot start:\n  " + "\n  ".join(lines))


@attrs.define
class Project:
    """What a project declares."""

    root: Path | None
    steps: list[Step] = attrs.field(factory=list)
    streams: list[StreamConfig | Stream] = attrs.field(factory=list)
    config: ModuleType | None = None

    @property
    def authenticate(self) -> Any:
        return getattr(self.config, "authenticate", None)


def discover_files(root: Path) -> list[Path]:
    """Step and stream files under ``root``, in a stable order."""
    found: list[Path] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and d not in _SKIP_DIRS and not (Path(directory, d) / "pyvenv.cfg").exists()
        )
        for name in sorted(filenames):
            if name.endswith("_step.py") or name.endswith("_stream.py"):
                found.append(Path(directory, name))
    return found


def _module_name(root: Path, path: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def _import(root: Path, path: Path) -> ModuleType:
    name = _module_name(root, path)
    existing = sys.modules.get(name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() != path.resolve():
        del sys.modules[name]  # another project's module of the same name (tests load several)
    elif existing is not None:
        return importlib.reload(existing)
    return importlib.import_module(name)


def _where(path: Path, exc: BaseException) -> str:
    """``file:line: Error: message``, the line taken from the failing file's frame."""
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    if line is None:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if Path(frame.filename).resolve() == path.resolve():
                line = frame.lineno
                break
    return f"line {line}: {type(exc).__name__}: {exc}" if line else f"{type(exc).__name__}: {exc}"


def _is_under(path: str | None, root: Path) -> bool:
    if not path:
        return False
    try:
        Path(path).resolve().relative_to(root)
        return True
    except ValueError:
        return False


def _forget_other_projects_modules(root: Path) -> None:
    """Drop imported modules that share a top-level name with this project's but live elsewhere.

    Step files import their project's modules by plain names (``streams``,
    ``helpers``); a process that loads two projects (tests, tools) must not
    hand one project the other's module of the same name.
    """
    names = {p.stem if p.suffix == ".py" else p.name for p in root.iterdir()
             if not p.name.startswith(".") and (p.is_dir() or p.suffix == ".py")}
    for name in list(sys.modules):
        top = name.split(".", 1)[0]
        if top not in names:
            continue
        module = sys.modules[name]
        locations = [getattr(module, "__file__", None), *list(getattr(module, "__path__", None) or [])]
        if not any(_is_under(location, root) for location in locations if location):
            del sys.modules[name]


def load_project(directory: str | os.PathLike[str]) -> Project:
    """Import a project directory; raise `ProjectError` with every problem found."""
    root = Path(directory).resolve()
    if not root.is_dir():
        raise ProjectError([(str(directory), "is not a directory")])
    if str(root) in sys.path:
        sys.path.remove(str(root))
    sys.path.insert(0, str(root))  # this project's modules win over another's of the same name
    _forget_other_projects_modules(root)
    importlib.invalidate_caches()
    problems: list[tuple[str, str]] = []
    modules: list[tuple[str, ModuleType]] = []
    config_module = None
    config_path = root / "runtime_config.py"
    if config_path.exists():
        try:
            config_module = _import(root, config_path)
        except Exception as exc:  # noqa: BLE001 - reported with the file and line
            problems.append((str(config_path), _where(config_path, exc)))
    for path in discover_files(root):
        try:
            modules.append((str(path), _import(root, path)))
        except Exception as exc:  # noqa: BLE001 - every broken file is reported, not just the first
            problems.append((str(path), _where(path, exc)))
    project = collect(modules, root=root, problems=problems)
    project.config = config_module
    return project


def collect(
    modules: list[tuple[str, ModuleType]], *, root: Path | None = None, problems: list[tuple[str, str]] | None = None
) -> Project:
    """Gather steps and streams from imported modules and check them together."""
    problems = [] if problems is None else problems
    project = Project(root)
    step_files: dict[str, str] = {}
    for file, module in modules:
        for found in _steps_of(module, file, problems):
            found.file = file
            found.module = module.__name__
            if found.name in step_files:
                problems.append((file, f"duplicate step name {found.name!r} (also in {step_files[found.name]})"))
                continue
            step_files[found.name] = file
            project.steps.append(found)
        project.streams.extend(_streams_of(module, file, problems))
    _check_together(project, problems)
    if problems:
        raise ProjectError(problems)
    return project


def _steps_of(module: ModuleType, file: str, problems: list[tuple[str, str]]) -> Iterator[Step]:
    seen: set[int] = set()
    for value in vars(module).values():
        if isinstance(value, Step) and id(value) not in seen:
            seen.add(id(value))
            if value.handler is None:
                problems.append((file, f"step {value.name!r} has no handler (use @s.handle or s.handle(fn))"))
                continue
            yield value
    config = getattr(module, "config", None)
    handler = getattr(module, "handler", None)
    if file.endswith("_step.py") and isinstance(config, dict) and not isinstance(config, StreamConfig):
        if handler is None:
            problems.append((file, "defines `config` but no `handler`"))
            return
        try:
            handler_arity(handler)
        except TypeError as exc:
            problems.append((file, f"handler has the wrong signature: {exc}"))
            return
        try:
            yield Step(config, handler)
        except (TypeError, ValueError, KeyError) as exc:
            problems.append((file, f"invalid step config: {exc}"))


def _streams_of(module: ModuleType, file: str, problems: list[tuple[str, str]]) -> Iterator[StreamConfig | Stream]:
    for value in vars(module).values():
        if isinstance(value, Stream):
            yield value.config or value  # a bare name declares a schema-less stream
        elif isinstance(value, StreamConfig):
            yield value
    config = getattr(module, "config", None)
    if file.endswith("_stream.py") and isinstance(config, dict):
        try:
            yield StreamConfig.from_dict(config)
        except (TypeError, ValueError) as exc:
            problems.append((file, f"invalid stream config: {exc}"))


def _check_together(project: Project, problems: list[tuple[str, str]]) -> None:
    declared: dict[str, StreamConfig | None] = {}
    for stream in project.streams:
        if isinstance(stream, Stream):
            declared.setdefault(stream.name, None)
            continue
        other = declared.get(stream.name)
        if other is not None and other != stream:
            problems.append(("", f"stream {stream.name!r} is declared twice with different configs"))
        declared[stream.name] = stream
    routes: dict[tuple[str, tuple[str, ...]], str] = {}
    for one in project.steps:
        for trigger in one.triggers:
            if isinstance(trigger, HttpTrigger):
                shape = tuple(":" if s.startswith(":") else s for s in trigger.path.strip("/").split("/"))
                key = (trigger.method, shape)
                if key in routes:
                    problems.append((one.file or "", f"step {one.name!r}: {trigger.method} {trigger.path} is also "
                                     f"handled by step {routes[key]!r}"))
                routes[key] = one.name
            elif isinstance(trigger, StreamTrigger) and trigger.stream_name not in declared:
                problems.append((one.file or "", f"step {one.name!r}: stream trigger names {trigger.stream_name!r}, "
                                 "which no module declares"))
            elif isinstance(trigger, CronTrigger):
                expression = trigger.expression
                if (
                    not isinstance(expression, str) or len(expression.split()) != 5
                    or not croniter.croniter.is_valid(expression)
                ):
                    problems.append((one.file or "", f"step {one.name!r}: invalid cron expression {expression!r} "
                                     "(five fields: minute hour day-of-month month day-of-week)"))
