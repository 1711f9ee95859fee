"""Builds dist/module.wasm from app.py with componentize-py (what `nexum dev` runs).

componentize-py lives in a .venv next to this file, pinned, so every build of this module
uses the same compiler whatever is installed globally. Standard library only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

COMPONENTIZE_PY = "0.25.1"
ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
OUTPUT = Path("dist") / "module.wasm"


def venv_tool(name: str) -> Path:
    """A program inside .venv (bin/ on Unix, Scripts/ on Windows)."""
    folder = VENV / ("Scripts" if os.name == "nt" else "bin")
    return folder / (name + (".exe" if os.name == "nt" else ""))


def run(*command: str | Path) -> None:
    """Runs a command in the module's folder; a failure ends the build with its exit code."""
    result = subprocess.run([str(part) for part in command], cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"build: `{' '.join(str(part) for part in command)}` failed (exit code {result.returncode})")


def installed_version() -> str | None:
    """The componentize-py version in .venv, or None if it is not there."""
    probe = subprocess.run(
        [str(venv_tool("python")), "-c",
         "import importlib.metadata as m; print(m.version('componentize-py'))"],
        capture_output=True, text=True,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_componentize_py() -> Path:
    """Creates .venv and installs the pinned componentize-py when missing or different."""
    if not venv_tool("python").exists():
        print("build: creating .venv", flush=True)
        run(sys.executable, "-m", "venv", VENV)
    version = installed_version()
    if version != COMPONENTIZE_PY:
        print(f"build: installing componentize-py {COMPONENTIZE_PY} into .venv"
              + (f" (found {version})" if version else ""), flush=True)
        run(venv_tool("python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            f"componentize-py=={COMPONENTIZE_PY}")
    return venv_tool("componentize-py")


def main() -> None:
    if not any((ROOT / "wit").glob("*.wit")):
        sys.exit("build: wit/ holds no .wit files; `nexum new` copies the host's WIT there "
                 "(from the nexum repository's wit/host/)")
    tool = ensure_componentize_py()
    (ROOT / OUTPUT).parent.mkdir(exist_ok=True)
    started = time.monotonic()
    run(tool, "-d", "wit", "-w", "event-module", "componentize", "app", "-o", OUTPUT)
    size = (ROOT / OUTPUT).stat().st_size
    print(f"build: {OUTPUT.as_posix()} {size / 1e6:.1f} MB in {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
