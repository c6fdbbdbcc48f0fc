"""The repository's Dockerfile read the way `docker build` reads it, without Docker.

`replay` walks its instructions in order into a folder standing for the image's file system:
ENV and WORKDIR as written (an absolute path lands under that folder), COPY from a build
context that `build_context` assembles under `.dockerignore`'s rules, and each `RUN pip
install ...` line through a caller's runner (a fresh venv). Other RUN lines (the user, folder
ownership) need root and are listed as skipped; the folders ENV names are made instead.
Anything this reader does not understand (a wildcard COPY, a variable in ENV, a RUN in exec
form) raises, naming the Dockerfile's line, so the recipe cannot drift out of what is tested.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

PIP_INSTALL = re.compile(r"^(pip3?|python3? -m pip) install\b")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, ENV, RUN, ...
    args: str  # the rest, continuation lines joined
    line: int  # where it starts in the Dockerfile


def instructions(dockerfile: Path) -> list[Instruction]:
    """The Dockerfile's instructions; comments and blank lines dropped, `\\` continuations joined."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(dockerfile.read_text(encoding="utf-8").splitlines(), 1):
        text = raw.strip()
        if not pending and (not text or text.startswith("#")):
            continue
        if pending and text.startswith("#"):  # a comment inside a continued instruction
            continue
        if not pending:
            start = number
        if text.endswith("\\"):
            pending.append(text[:-1].strip())
            continue
        pending.append(text)
        keyword, _, args = " ".join(part for part in pending if part).partition(" ")
        found.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    if pending:
        raise ValueError(f"{dockerfile}:{start}: the last instruction ends with a continuation")
    return found


def exec_form(instruction: Instruction) -> list[str]:
    """The JSON array of a CMD or ENTRYPOINT (the shell form would hide the process from signals)."""
    try:
        argv = json.loads(instruction.args)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"Dockerfile:{instruction.line}: {instruction.keyword} is not in exec form"
        ) from exc
    if not isinstance(argv, list) or not all(isinstance(arg, str) for arg in argv):
        raise ValueError(f"Dockerfile:{instruction.line}: {instruction.keyword} is not a list")
    return argv


def declared_env(dockerfile: Path) -> dict[str, str]:
    """The image's ENV as written (paths inside the image)."""
    env: dict[str, str] = {}
    for step in instructions(dockerfile):
        if step.keyword == "ENV":
            env.update(_env_pairs(step, f"{dockerfile.name}:{step.line}"))
    return env


def declared_command(dockerfile: Path) -> list[str]:
    """The image's CMD (the last one, as Docker keeps it)."""
    commands = [exec_form(step) for step in instructions(dockerfile) if step.keyword == "CMD"]
    if not commands:
        raise ValueError(f"{dockerfile}: no CMD")
    return commands[-1]


def declared_ports(dockerfile: Path) -> list[int]:
    """The ports the image EXPOSEs."""
    return [
        int(port.split("/")[0])
        for step in instructions(dockerfile)
        if step.keyword == "EXPOSE"
        for port in step.args.split()
    ]


def option_index(argv: list[str], *names: str) -> int:
    """Where the value of the first of `names` is in `argv` (a command's `--port 4000`)."""
    for index, arg in enumerate(argv[:-1]):
        if arg in names:
            return index + 1
    raise ValueError(f"none of {names} in {argv}")


def option(argv: list[str], *names: str) -> str:
    """The value of the first of `names` in `argv`."""
    return argv[option_index(argv, *names)]


class DockerIgnore:
    """`.dockerignore`'s rules: a path is left out when the last pattern matching it (or one of
    its parent folders) is not an exception (`!`); `*` stays inside one path part, `**` spans any."""

    def __init__(self, path: Path) -> None:
        self.rules: list[tuple[bool, re.Pattern[str], tuple[str, ...]]] = []
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        for raw in lines:
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            exception = text.startswith("!")
            pattern = os.path.normpath(text.lstrip("!").strip()).lstrip("/")
            parts = tuple(PurePosixPath(pattern).parts)
            self.rules.append((exception, _pattern_regex(parts), parts))

    def excluded(self, relative: str) -> bool:
        """Whether `relative` (a posix path inside the context) stays out of it."""
        candidates = [relative]
        parent = PurePosixPath(relative).parent
        while str(parent) != ".":
            candidates.append(str(parent))
            parent = parent.parent
        verdict = False
        for exception, regex, _ in self.rules:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                verdict = not exception
        return verdict

    def may_include_below(self, folder: str) -> bool:
        """Whether an exception could bring back something inside an excluded `folder`."""
        depth = len(PurePosixPath(folder).parts)
        for exception, _, parts in self.rules:
            if not exception:
                continue
            if "**" in parts[:depth]:
                return True
            if len(parts) > depth and all(
                fnmatch.fnmatchcase(name, pattern)
                for name, pattern in zip(PurePosixPath(folder).parts, parts, strict=False)
            ):
                return True
        return False


def _pattern_regex(parts: tuple[str, ...]) -> re.Pattern[str]:
    regex = ""
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _part_regex(part) + ("" if last else "/")
    return re.compile(regex)


def _part_regex(part: str) -> str:
    """One path part of a pattern: `*` and `?` never match `/` (Go's filepath.Match)."""
    out: list[str] = []
    index = 0
    while index < len(part):
        char = part[index]
        end = part.find("]", index + 1) if char == "[" else -1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif end > index:
            body = part[index + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            index = end
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


def build_context(source: Path, target: Path) -> None:
    """Copy into `target` the files of `source` that `.dockerignore` lets into the context."""
    ignore = DockerIgnore(source / ".dockerignore")
    for folder, dirs, files in os.walk(source):
        here = Path(folder).relative_to(source)
        kept_dirs = []
        for name in dirs:
            relative = (here / name).as_posix()
            if not ignore.excluded(relative) or ignore.may_include_below(relative):
                kept_dirs.append(name)
        dirs[:] = kept_dirs
        for name in files:
            relative = (here / name).as_posix()
            if not ignore.excluded(relative):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / relative, target / relative)


@dataclass
class Replayed:
    """What the image would hold and start: its environment, working folder and command."""

    base: str = ""
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path = Path("/")
    cmd: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    exposed: list[int] = field(default_factory=list)
    installs: list[str] = field(default_factory=list)  # the RUN pip install lines, as run
    skipped: list[str] = field(default_factory=list)  # the RUN lines that need root


Runner = Callable[[str, Path, Mapping[str, str]], None]


def replay(dockerfile: Path, context: Path, root: Path, run_install: Runner) -> Replayed:
    """Replay `dockerfile` into `root` from `context`; `run_install(command, cwd, env)` runs
    each `RUN pip install` line (in the image's working folder, with its ENV so far)."""
    image = Replayed(workdir=root)
    for step in instructions(dockerfile):
        where = f"{dockerfile.name}:{step.line}"
        if step.keyword == "FROM":
            image.base = step.args.split()[0]
        elif step.keyword == "ENV":
            for name, value in _env_pairs(step, where).items():
                image.env[name] = str(_rooted(root, value)) if value.startswith("/") else value
        elif step.keyword == "WORKDIR":
            image.workdir = _place(root, image.workdir, step.args)
            image.workdir.mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY":
            _copy(step, where, context, root, image.workdir)
        elif step.keyword == "RUN":
            if step.args.startswith("["):
                raise ValueError(f"{where}: RUN in exec form is not replayed")
            if PIP_INSTALL.match(step.args):
                run_install(step.args, image.workdir, dict(image.env))
                image.installs.append(step.args)
            else:
                image.skipped.append(step.args)
        elif step.keyword == "CMD":
            image.cmd = exec_form(step)
        elif step.keyword == "ENTRYPOINT":
            image.entrypoint = exec_form(step)
        elif step.keyword == "EXPOSE":
            image.exposed.extend(int(port.split("/")[0]) for port in step.args.split())
        elif step.keyword in {"USER", "LABEL", "ARG", "HEALTHCHECK", "STOPSIGNAL"}:
            continue
        else:
            raise ValueError(f"{where}: {step.keyword} is not replayed")
    for value in image.env.values():
        if value.startswith(str(root)):
            Path(value).mkdir(parents=True, exist_ok=True)
    return image


def _env_pairs(step: Instruction, where: str) -> dict[str, str]:
    if "$" in step.args:
        raise ValueError(f"{where}: variables in ENV are not replayed")
    pairs: dict[str, str] = {}
    for token in shlex.split(step.args):
        name, equals, value = token.partition("=")
        if not equals:
            raise ValueError(f"{where}: write ENV as NAME=value")
        pairs[name] = value
    return pairs


def _rooted(root: Path, absolute: str) -> Path:
    return root / absolute.lstrip("/")


def _place(root: Path, workdir: Path, path: str) -> Path:
    return _rooted(root, path) if path.startswith("/") else workdir / path


def _copy(step: Instruction, where: str, context: Path, root: Path, workdir: Path) -> None:
    words = [word for word in shlex.split(step.args) if not word.startswith("--")]
    if len(words) < 2:
        raise ValueError(f"{where}: COPY needs a source and a destination")
    *sources, destination = words
    into_folder = destination.endswith("/") or len(sources) > 1
    target = _place(root, workdir, destination)
    for name in sources:
        if any(char in name for char in "*?["):
            raise ValueError(f"{where}: COPY {name}: wildcards are not replayed")
        source = context / name
        if not source.exists():
            raise FileNotFoundError(
                f"{where}: COPY {name}: not in the build context (see .dockerignore)"
            )
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            placed = target / source.name if into_folder or target.is_dir() else target
            placed.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, placed)
