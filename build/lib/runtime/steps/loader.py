"""Discover a project's steps and streams, and refuse a broken project at startup.

Every ``*_step.py`` and ``*_stream.py`` under the project directory
(recursively; hidden folders, ``.runtime/``, ``node_modules`` and virtual
environments skipped) is imported under its dotted path relative to the
directory, with the directory on ``sys.path``, so step files can import
stream modules and helpers. ``runtime_config.py`` at the root may define
app-level hooks (``authenticate``).

Every problem found is reported at once, each with its file, its line and
what to do, so a user fixes them in one pass: a `ProjectError` whose
``problems`` are `Problem` (file, line, message) tuples. Import errors
(a bad schema in a ``StreamConfig`` among them: it is compiled when
declared) come from the failing frame; the others from the line where the
step or stream is assigned (found with ``ast``), or the handler's.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import attrs

from ..streams.config import StreamConfig
from ..streams.stream import Stream
from .step import Step, handler_arity
from .triggers import CronTrigger, HttpTrigger, StreamTrigger

__all__ = ["Problem", "Project", "ProjectError", "load_project", "discover_files", "collect"]

_SKIP_DIRS = {".runtime", "node_modules", "__pycache__", "site-packages", "venv", ".venv", "env"}


class Problem(NamedTuple):
    """One reason a project cannot start: where (``file``, ``line``) and what to do (``message``)."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{_shown(self.file)}:{self.line}" if self.file and self.line else _shown(self.file)
        return f"{where}: {self.message}" if where else self.message


class ProjectError(Exception):
    """The project cannot start; ``problems`` lists every `Problem` (file, line, message) found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("the project cannot start:\n  " + "\n  ".join(str(problem) for problem in problems))


def _shown(file: str) -> str:
    """A path relative to the working directory when it is under it (clickable, short)."""
    if not file:
        return ""
    try:
        return os.path.relpath(file) if not os.path.relpath(file).startswith("..") else file
    except ValueError:  # another drive (Windows)
        return file


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


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


#: the (mtime, size) of each project file when it was last imported
_IMPORTED: dict[str, tuple[int, int]] = {}


def _import(root: Path, path: Path) -> ModuleType:
    """Import ``path`` under its dotted name; again only if the file changed since.

    A module already imported from this very file, unchanged, is reused: a
    test that imported a step module before opening the app holds the same
    objects the app runs (re-executing it would leave the test a stale
    copy). A changed file is re-executed, so a reloading dev server sees
    edits.
    """
    name = _module_name(root, path)
    existing = sys.modules.get(name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() != path.resolve():
        del sys.modules[name]  # another project's module of the same name (tests load several)
    elif existing is not None:
        if _IMPORTED.get(str(path)) == _stamp(path):
            return existing
        module = importlib.reload(existing)
        _IMPORTED[str(path)] = _stamp(path)
        return module
    module = importlib.import_module(name)
    _IMPORTED[str(path)] = _stamp(path)
    return module


def _import_problem(path: Path, exc: BaseException) -> Problem:
    """The failing file, the line of the failing frame in it, and what to do."""
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    if line is None:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if Path(frame.filename).resolve() == path.resolve():
                line = frame.lineno
                break
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ModuleNotFoundError):
        message += (f" (install {exc.name!r} in this environment; if it is a module of the project, "
                    "import it by its path relative to the project directory)")
    elif isinstance(exc, SyntaxError):
        message += " (fix the syntax at that line)"
    else:
        message += " (raised while the module was imported: fix the code at that line)"
    return Problem(str(path), line, message)


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
        raise ProjectError([Problem(str(directory), None, "is not a directory (give the project's folder)")])
    if str(root) in sys.path:
        sys.path.remove(str(root))
    sys.path.insert(0, str(root))  # this project's modules win over another's of the same name
    _forget_other_projects_modules(root)
    importlib.invalidate_caches()
    problems: list[Problem] = []
    modules: list[tuple[str, ModuleType]] = []
    config_module = None
    config_path = root / "runtime_config.py"
    if config_path.exists():
        try:
            config_module = _import(root, config_path)
        except Exception as exc:  # noqa: BLE001 - reported with the file and line
            problems.append(_import_problem(config_path, exc))
    for path in discover_files(root):
        try:
            modules.append((str(path), _import(root, path)))
        except Exception as exc:  # noqa: BLE001 - every broken file is reported, not just the first
            problems.append(_import_problem(path, exc))
    project = collect(modules, root=root, problems=problems)
    project.config = config_module
    return project


def _top_level_lines(file: str) -> dict[str, int]:
    """Each name a module assigns or defines at top level, and the line where it first does."""
    try:
        tree = ast.parse(Path(file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    lines: dict[str, int] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            lines.setdefault(node.name, node.lineno)
            continue
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    lines.setdefault(name.id, node.lineno)
    return lines


def _where(one: Step) -> str:
    return f"{_shown(one.file or '')}:{one.line}" if one.line else _shown(one.file or "")


def collect(
    modules: list[tuple[str, ModuleType]], *, root: Path | None = None, problems: list[Problem] | None = None
) -> Project:
    """Gather steps and streams from imported modules and check them together."""
    problems = [] if problems is None else problems
    project = Project(root)
    first: dict[str, Step] = {}
    declared: list[tuple[StreamConfig | Stream, str, int | None]] = []
    for file, module in modules:
        lines = _top_level_lines(file)
        for found in _steps_of(module, file, lines, problems):
            found.file = file
            found.module = module.__name__
            other = first.get(found.name)
            if other is not None:
                problems.append(Problem(file, found.line, f"duplicate step name {found.name!r} (also in "
                                        f"{_where(other)}): rename one; step names are unique in a project"))
                continue
            first[found.name] = found
            project.steps.append(found)
        for stream, line in _streams_of(module, file, lines, problems):
            project.streams.append(stream)
            declared.append((stream, file, line))
    _check_together(project, declared, problems)
    if problems:
        raise ProjectError(problems)
    return project


def _handler_line(handler: Any) -> int | None:
    code = getattr(handler, "__code__", None)
    return getattr(code, "co_firstlineno", None)


def _steps_of(module: ModuleType, file: str, lines: dict[str, int], problems: list[Problem]) -> Iterator[Step]:
    seen: set[int] = set()
    for name, value in vars(module).items():
        if isinstance(value, Step) and id(value) not in seen:
            seen.add(id(value))
            value.line = lines.get(name) or _handler_line(value.handler)
            if value.handler is None:
                problems.append(Problem(file, value.line, f"step {value.name!r} has no handler: decorate a function "
                                        f"with @{name}.handle, or call {name}.handle(fn)"))
                continue
            yield value
    config = getattr(module, "config", None)
    handler = getattr(module, "handler", None)
    if file.endswith("_step.py") and isinstance(config, dict) and not isinstance(config, StreamConfig):
        line = lines.get("config")
        if handler is None:
            problems.append(Problem(file, line, "defines `config` but no `handler`: add "
                                    "`async def handler(input, ctx): ...` to the module"))
            return
        try:
            handler_arity(handler)
        except TypeError as exc:
            problems.append(Problem(file, lines.get("handler", line),
                                    f"handler has the wrong signature: {exc}"))
            return
        try:
            found = Step(config, handler)
        except (TypeError, ValueError, KeyError) as exc:
            problems.append(Problem(file, line, f"invalid step config: {exc}"))
            return
        found.line = line
        yield found


def _streams_of(
    module: ModuleType, file: str, lines: dict[str, int], problems: list[Problem]
) -> Iterator[tuple[StreamConfig | Stream, int | None]]:
    for name, value in vars(module).items():
        if isinstance(value, Stream):
            yield value.config or value, lines.get(name)  # a bare name declares a schema-less stream
        elif isinstance(value, StreamConfig):
            yield value, lines.get(name)
    config = getattr(module, "config", None)
    if file.endswith("_stream.py") and isinstance(config, dict):
        try:
            yield StreamConfig.from_dict(config), lines.get("config")
        except (TypeError, ValueError) as exc:
            problems.append(Problem(file, lines.get("config"), f"invalid stream config: {exc}"))


def _route_shape(path: str) -> tuple[str, ...]:
    return tuple(":" if segment.startswith(":") else segment for segment in path.strip("/").split("/"))


def _check_together(
    project: Project, declared: list[tuple[StreamConfig | Stream, str, int | None]], problems: list[Problem]
) -> None:
    configs: dict[str, tuple[StreamConfig, str, int | None]] = {}
    names: set[str] = set()
    for stream, file, line in declared:
        names.add(stream.name)
        if isinstance(stream, Stream):
            continue
        earlier = configs.get(stream.name)
        if earlier is not None and earlier[0] != stream:
            where = f"{_shown(earlier[1])}:{earlier[2]}" if earlier[2] else _shown(earlier[1])
            problems.append(Problem(file, line, f"stream {stream.name!r} is declared twice with different configs "
                                    f"(also in {where}): keep one StreamConfig and import it, or use "
                                    f"Stream({stream.name!r}) for a handle"))
            continue
        configs.setdefault(stream.name, (stream, file, line))
    routes: dict[tuple[str, tuple[str, ...]], tuple[Step, HttpTrigger]] = {}
    for one in project.steps:
        for trigger in one.triggers:
            if isinstance(trigger, HttpTrigger):
                key = (trigger.method, _route_shape(trigger.path))
                clash = routes.get(key)
                if clash is not None:
                    other, other_trigger = clash
                    same = "" if other_trigger.path == trigger.path else (
                        f" ({other_trigger.path} and {trigger.path} differ only in parameter names)")
                    problems.append(Problem(one.file or "", one.line, (
                        f"step {one.name!r}: {trigger.method} {trigger.path} is also handled by step {other.name!r} "
                        f"({_where(other)}){same}: change the method or path of one of them")))
                    continue
                routes[key] = (one, trigger)
            elif isinstance(trigger, StreamTrigger) and trigger.stream_name not in names:
                known = ", ".join(sorted(names)) or "none"
                problems.append(Problem(one.file or "", one.line, (
                    f"step {one.name!r}: stream trigger names {trigger.stream_name!r}, which no module declares "
                    f"(declared: {known}): fix the name, or declare it in a *_stream.py file with "
                    f"config = StreamConfig(name={trigger.stream_name!r})")))
            elif isinstance(trigger, CronTrigger):
                import croniter  # here, not at the top: ~15 ms of `import runtime` for every user

                expression = trigger.expression
                if (
                    not isinstance(expression, str) or len(expression.split()) != 5
                    or not croniter.croniter.is_valid(expression)
                ):
                    problems.append(Problem(one.file or "", one.line, (
                        f"step {one.name!r}: invalid cron expression {expression!r}: write five fields, "
                        "minute hour day-of-month month day-of-week (e.g. '*/5 * * * *')")))
