"""docs/testing.md's set-up and test file, copied as the page says, pass against a copy of examples/todo."""

from __future__ import annotations

import shutil
import subprocess
import sys

from .markdown import ROOT, files


def test_the_test_file_of_testing_md_passes_as_copied(tmp_path):
    project = tmp_path / "my_todo"
    shutil.copytree(ROOT / "examples" / "todo", project, ignore=shutil.ignore_patterns(".runtime", "__pycache__"))
    written = files(ROOT / "docs" / "testing.md")
    assert set(written) == {"pyproject.toml", "conftest.py", "tests/test_todo.py"}
    for path, body in written.items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(body)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("3 passed"), result.stdout
