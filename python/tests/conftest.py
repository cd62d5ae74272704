"""Shared helpers of the plugin's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def workspace_root() -> Path:
    """The cargo workspace this package lives in."""
    for directory in Path(__file__).resolve().parents:
        manifest = directory / "Cargo.toml"
        if manifest.is_file() and "[workspace]" in manifest.read_text():
            return directory
    raise RuntimeError(f"no cargo workspace above {__file__}")


def cargo_bin(name: str, env_var: str, package: str) -> str:
    """A Rust binary of the workspace: `env_var` if set, else the debug
    build in the workspace's target directory. Missing, the test fails
    with the command that builds it (scripts/test.sh builds it first)."""
    path = os.environ.get(env_var) or str(workspace_root() / "target" / "debug" / name)
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"the Rust binary {name} is missing at {path}: build it with "
            f"`cargo build -p {package} --bin {name}` (or set {env_var})",
            pytrace=False,
        )
    return path


def python_child(code: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """This interpreter running `code`, lines on its stdout."""
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def env_without(*names: str, **extra: str) -> dict[str, str]:
    """This process's environment without `names`, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(extra)
    return env
