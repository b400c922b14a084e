"""docker-compose.yml and the Dockerfile, parsed and checked without a Docker engine.

Each check returns a list of problems (empty when the file is right), so the same checks run
against the shipped files and against deliberately broken copies that must fail.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pytest
import typer
import yaml

import monitor.cli  # noqa: F401  (importing the package registers every command on `app`)
from monitor.cli.common import app
from monitor.config import load_config

ROOT = Path(__file__).resolve().parents[1]
# ${NAME}, ${NAME<op>arg} (op one of :- - :? ? :+ +), $NAME. Only innermost references match
# (arg holds no `$`), so nested defaults resolve from the inside out; `$$` is handled apart.
_REF = re.compile(
    r"\$\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^${}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)
_DOLLAR = "\0"  # stands for `$$` (and for `$` in substituted values) while resolving
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_?KEY|PRIVATE", re.IGNORECASE)
# Mail catchers by image, with the port their SMTP server listens on.
MAIL_CATCHERS = {"mailpit": 1025, "mailhog": 1025, "maildev": 1025, "smtp4dev": 25}


class _ComposeLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    """Safe YAML with anchors and `<<` merges, refusing duplicate keys as compose does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [k.value for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"]
        duplicated = sorted({k for k in keys if keys.count(k) > 1})
        if duplicated:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate keys {duplicated}", node.start_mark
            )
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


@dataclass
class Repo:
    compose: dict[str, Any]
    dockerfile: list[tuple[str, str]]  # (INSTRUCTION, arguments), continuations joined
    readme: str


def read_repo() -> Repo:
    compose = yaml.load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"), _ComposeLoader)
    docker = dockerfile_instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    return Repo(compose, docker, (ROOT / "README.md").read_text(encoding="utf-8"))


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n(?:\s*#[^\n]*\n)*", " ", text)
    lines = (line.strip() for line in joined.splitlines())
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]


class Ref(NamedTuple):
    name: str
    op: str  # "", ":-", "-", ":?", "?", ":+" or "+"
    arg: str  # the default, error message or replacement, inner references resolved


def resolve(text: str, env: Mapping[str, str], strict: bool = True) -> tuple[str, list[Ref]]:
    """Compose's variable substitution, and every reference it met on the way.

    A required variable (`${X:?msg}`) without a value raises ValueError when `strict`.
    """
    refs: list[Ref] = []

    def one(m: re.Match[str]) -> str:
        ref = Ref(m["braced"] or m["bare"], m["op"] or "", m["arg"] or "")
        refs.append(ref)
        present = ref.name in env and (env[ref.name] != "" or not ref.op.startswith(":"))
        if ref.op.endswith("?") and not present and strict:
            raise ValueError(f"${{{ref.name}}} is required: {ref.arg}")
        if ref.op.endswith("+"):
            return ref.arg if present else ""
        if present:
            return env[ref.name].replace("$", _DOLLAR)  # values are not interpolated again
        return ref.arg if ref.op.endswith("-") else ""

    text = text.replace("$$", _DOLLAR)
    while (resolved := _REF.sub(one, text)) != text:
        text = resolved
    return text.replace(_DOLLAR, "$"), refs


def interpolate(text: str, env: Mapping[str, str]) -> str:
    return resolve(text, env)[0]


def variables(text: str) -> list[Ref]:
    return resolve(text, {}, strict=False)[1]


def literal(text: str) -> str:
    """What the file itself writes: `text` with every reference (and its default) removed."""
    while (bare := _REF.sub("", text)) != text:
        text = bare
    return text


def effective_env(repo: Repo, service: Mapping[str, Any]) -> dict[str, str]:
    """What a container sees with an empty .env: our image's ENV, then compose's environment.

    Required variables (`${X:?…}`) get a placeholder, since compose refuses to start without.
    """
    required = {
        ref.name: f"<{ref.name}>"
        for text in strings(repo.compose)
        for ref in variables(text)
        if ref.op.endswith("?")
    }
    env = {k: interpolate(v, required) for k, v in environment(service).items()}
    return (image_env(repo) if "build" in service else {}) | env


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def services(repo: Repo) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = repo.compose.get("services") or {}
    return found


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (str(item).partition("=") for item in env)
        return {key: value for key, _, value in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def image_env(repo: Repo) -> dict[str, str]:
    return {
        key: value
        for instruction, args in repo.dockerfile
        if instruction == "ENV"
        for key, value in (pair.split("=", 1) for pair in shlex.split(args))
    }


class Mount(NamedTuple):
    target: str
    read_only: bool


def mounts(service: Mapping[str, Any]) -> dict[str, Mount]:
    """Source → Mount, for short (`src:dst:ro`) and long volume syntax."""
    found: dict[str, Mount] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, Mapping):
            found[volume["source"]] = Mount(volume["target"], bool(volume.get("read_only")))
        else:
            source, target, *mode = volume.split(":")
            found[source] = Mount(target, "ro" in ",".join(mode).split(","))
    return found


def built_here(repo: Repo) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services(repo).items() if "build" in svc}


def image_name(service: Mapping[str, Any]) -> str:
    return str(service.get("image", "")).rpartition("/")[2].partition(":")[0]


def documented(readme: str) -> set[str]:
    """The variables named in the first column of README's Environment table."""
    section = readme.partition("### Environment")[2].partition("\n#")[0]
    cells = (line.split("|")[1] for line in section.splitlines() if line.startswith("|"))
    return {name for cell in cells for name in re.findall(r"`([A-Z_][A-Z0-9_]*)`", cell)}


def exec_form(args: str) -> list[str] | None:
    """A JSON-array CMD/HEALTHCHECK; None for the shell form (sh would be PID 1)."""
    try:
        argv = json.loads(args)
    except ValueError:
        return None
    return argv if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else None


def cli_problems(argv: list[str], where: str) -> list[str]:
    """`argv` must be `monitor <registered command> [options]` that the CLI itself accepts."""
    if argv[:1] != ["monitor"] or len(argv) < 2:
        return [f"{where}: {argv} does not run the `monitor` command"]
    registered = {c.name or c.callback.__name__.replace("_", "-")
                  for c in app.registered_commands if c.callback}
    registered |= {g.name for g in app.registered_groups if g.name}
    if argv[1] not in registered:
        return [f"{where}: `monitor {argv[1]}` is not a command ({sorted(registered)})"]
    root = typer.main.get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    # Parse the arguments as the CLI would, without running the command.
    with root.make_context("monitor", [], resilient_parsing=True) as ctx:
        try:
            name, command, rest = root.resolve_command(ctx, argv[1:])
            assert command is not None and name is not None
            command.make_context(name, rest, parent=ctx)
        except typer.TyperException as exc:
            return [f"{where}: `{shlex.join(argv)}` is rejected by the CLI: {exc}"]
    return []


def command_problems(argv: list[str], env: Mapping[str, str], where: str) -> list[str]:
    """A real monitor command; `monitor health` also needs the heartbeat file named."""
    problems = cli_problems(argv, where)
    if argv[1:2] == ["health"] and not env.get("MONITOR_HEARTBEAT"):
        problems.append(f"{where}: `monitor health` without MONITOR_HEARTBEAT set")
    return problems


# The checks: each takes the repository's files and lists what is wrong with them.


def monitor_build_problems(repo: Repo) -> list[str]:
    monitor = services(repo).get("monitor")
    if monitor is None:
        return ["no `monitor` service"]
    build = monitor.get("build")
    build = {"context": build} if isinstance(build, str) else build or {}
    context, dockerfile = build.get("context"), build.get("dockerfile", "Dockerfile")
    problems = [] if context == "." else [f"monitor: builds from {context!r}, not the repo"]
    if not (ROOT / str(context) / str(dockerfile)).is_file():
        problems.append(f"monitor: {context}/{dockerfile} does not exist")
    if monitor.get("profiles"):
        problems.append("monitor: in a profile, so plain `docker compose up` would not start it")
    return problems


def mount_problems(repo: Repo) -> list[str]:
    """storage/ is mounted read-write, feeds.toml read-only, and the database lands in storage/."""
    problems: list[str] = []
    for name, svc in built_here(repo).items():
        found = mounts(svc)
        storage, config = found.get("./storage"), found.get("./feeds.toml")
        if storage is None or storage.read_only:
            problems.append(f"{name}: ./storage is not mounted read-write")
        if config is None or not config.read_only:
            problems.append(f"{name}: ./feeds.toml is not mounted read-only")
        if storage is None or config is None:
            continue
        env = effective_env(repo, svc)
        if env.get("MONITOR_CONFIG") != config.target:
            problems.append(f"{name}: MONITOR_CONFIG is not the mounted {config.target}")
        url = load_config(ROOT / "feeds.toml", env).settings.database_url
        if not url.startswith("sqlite"):
            continue
        # feeds.toml is at the repo root here and at config.target there: map one onto the other.
        file = Path(url.partition(":///")[2].partition("?")[0])
        inside = PurePosixPath(config.target).parent / (
            file.relative_to(ROOT).as_posix() if file.is_relative_to(ROOT) else "/outside-repo"
        )
        if not inside.is_relative_to(storage.target):
            problems.append(f"{name}: the SQLite file {inside} is outside {storage.target}")
    for source in ("./storage", "./feeds.toml"):
        if not (ROOT / source).exists():
            problems.append(f"{source}: missing from the repository")
    return problems


def uid_of(user: str, repo: Repo) -> int | None:
    """A numeric uid for `user` (a number, or a name the Dockerfile creates with --uid)."""
    name = user.partition(":")[0]
    if name.isdigit():
        return int(name)
    if name == "root":
        return 0
    created = rf"(?:useradd|adduser)\b[^&;]*?(?:--uid|-u)[ =](\d+)[^&;]*\b{re.escape(name)}\b"
    for instruction, args in repo.dockerfile:
        if instruction == "RUN" and (found := re.search(created, args)):
            return int(found[1])
    return None


def non_root_problems(repo: Repo) -> list[str]:
    users = [args for instruction, args in repo.dockerfile if instruction == "USER"]
    image_uid = uid_of(users[-1], repo) if users else 0
    problems = [] if image_uid not in (None, 0) else [
        f"Dockerfile: USER {users[-1] if users else '(none)'} runs as root or an unknown uid"]
    for name, svc in built_here(repo).items():
        uid = uid_of(str(svc.get("user", "")), repo) if svc.get("user") else image_uid
        if uid in (None, 0):
            problems.append(f"{name}: user {svc.get('user')!r} is root or has no numeric uid")
        elif uid != image_uid:
            problems.append(f"{name}: uid {uid} is not the image's user ({image_uid})")
    return problems


def healthcheck_problems(repo: Repo) -> list[str]:
    problems: list[str] = []
    checks = [(f"{name} healthcheck", svc.get("healthcheck") or {}, svc)
              for name, svc in built_here(repo).items()]
    for where, check, svc in checks:
        test = check.get("test")
        if check.get("disable") or not isinstance(test, list) or test[:1] == ["NONE"]:
            problems.append(f"{where}: none")
            continue
        argv = shlex.split(test[1]) if test[0] == "CMD-SHELL" else test[1:]
        env = effective_env(repo, svc)
        problems += command_problems(argv, env, where)
    docker = [args for instruction, args in repo.dockerfile if instruction == "HEALTHCHECK"]
    image_argv = exec_form(docker[-1].partition("CMD ")[2]) if docker else None
    if image_argv is None:
        return [*problems, "Dockerfile: no HEALTHCHECK CMD in exec form"]
    return problems + command_problems(image_argv, image_env(repo), "Dockerfile HEALTHCHECK")


def container_ports(service: Mapping[str, Any]) -> set[int]:
    listed = [str(p) for p in [*(service.get("expose") or []), *(service.get("ports") or [])]]
    return {int(p.rpartition(":")[2].partition("/")[0]) for p in listed}


def mail_catcher_problems(repo: Repo) -> list[str]:
    catchers = {n: s for n, s in services(repo).items() if image_name(s) in MAIL_CATCHERS}
    if not catchers:
        return ["no mail catcher service (one of " + ", ".join(MAIL_CATCHERS) + ")"]
    problems: list[str] = []
    for name, svc in catchers.items():
        smtp = MAIL_CATCHERS[image_name(svc)]
        if smtp not in container_ports(svc):
            problems.append(f"{name}: its SMTP port {smtp} is not exposed")
        if svc.get("profiles"):
            problems.append(f"{name}: in a profile, so `docker compose up` has no mail catcher")
    # The README tells people which host and port to put in an email channel: they must work.
    hint = re.search(r'`host = "([\w.-]+)"`, `port = (\d+)`', repo.readme)
    if hint is None or hint[1] not in catchers or int(hint[2]) not in container_ports(
        catchers[hint[1]]
    ):
        problems.append("README: the email channel it suggests does not reach the mail catcher")
    return problems


def postgres_problems(repo: Repo) -> list[str]:
    """The `postgres` profile: PostgreSQL with a healthcheck and a replica that uses it."""
    build = services(repo).get("monitor", {}).get("build")
    profile = {n: s for n, s in services(repo).items() if "postgres" in (s.get("profiles") or [])}
    databases = [n for n, s in profile.items() if image_name(s) == "postgres"]
    replicas = [n for n, s in profile.items() if n != "monitor" and s.get("build") == build]
    if len(databases) != 1 or not replicas:
        return [f"postgres profile: {len(databases)} PostgreSQL services, replicas {replicas}"]
    db, problems = databases[0], []
    if not profile[db].get("healthcheck"):
        problems.append(f"{db}: no healthcheck, so a replica cannot wait for it")
    data = [s for s, m in mounts(profile[db]).items() if m.target == "/var/lib/postgresql/data"]
    if not data or data[0] not in (repo.compose.get("volumes") or {}):
        problems.append(f"{db}: its data is not kept in a declared named volume")
    for name in replicas:
        problems += replica_problems(repo, name, db)
    return problems


def replica_problems(repo: Repo, name: str, db: str) -> list[str]:
    """The replica reaches `db` with its user, password and database, once it is healthy."""
    replica, db_env = services(repo)[name], effective_env(repo, services(repo)[db])
    url = urlsplit(effective_env(repo, replica).get("MONITOR_DATABASE_URL", ""))
    expected = ("postgresql", db, 5432, db_env.get("POSTGRES_USER"),
                db_env.get("POSTGRES_PASSWORD"), f"/{db_env.get('POSTGRES_DB')}")
    actual = (url.scheme.partition("+")[0], url.hostname, url.port or 5432, url.username,
              url.password, url.path)
    problems = [] if actual == expected else [
        f"{name}: MONITOR_DATABASE_URL {actual} is not {db} {expected}"]
    waits = replica.get("depends_on") or {}
    if not isinstance(waits, Mapping) or (waits.get(db) or {}).get("condition") != (
        "service_healthy"
    ):
        problems.append(f"{name}: does not wait for {db} to be healthy")
    missing = set(environment(services(repo)["monitor"])) - set(environment(replica))
    if missing:
        problems.append(f"{name}: lacks the monitor's environment {sorted(missing)}")
    return problems


def named_env(repo: Repo, built: bool) -> dict[str, str]:
    """Each environment key the file names → where, for services built here or not."""
    return {
        key: f"services.{name}.environment"
        for name, svc in services(repo).items()
        if ("build" in svc) == built
        for key in environment(svc)
    }


def documentation_problems(repo: Repo, names: Mapping[str, str]) -> list[str]:
    known = documented(repo.readme)
    return [f"{where}: {name} is not in README's Environment table"
            for name, where in sorted(names.items()) if name not in known]


def referenced(repo: Repo) -> dict[str, str]:
    return {name: "docker-compose.yml" for text in strings(repo.compose)
            for name, *_ in variables(text)}


def secret_problems(repo: Repo) -> list[str]:
    """Secret-named keys hold exactly one ${…} reference, never a value."""
    problems: list[str] = []
    for name, svc in services(repo).items():
        for key, value in environment(svc).items():
            if _SECRET_NAME.search(key) and literal(value):
                problems.append(f"{name}: {key} is written in the file, not a ${{…}} reference")
    return problems


def default_secret_problems(repo: Repo) -> list[str]:
    """No password hides in a default: `${X_PASSWORD:-…}` or a URL with user:password@."""
    problems: list[str] = []
    for text in strings(repo.compose):
        for name, op, default in variables(text):
            if not op.endswith("-") or not default:
                continue
            if _SECRET_NAME.search(name):
                problems.append(f"${{{name}}} defaults to a password written in the file")
            if urlsplit(default).password:
                problems.append(f"${{{name}}} defaults to a URL with a password")
        if urlsplit(literal(text)).password:
            problems.append(f"{text!r} writes a password into a URL")
    return problems


def cmd_problems(repo: Repo) -> list[str]:
    """The image's CMD runs the daemon in exec form, so it gets SIGTERM as PID 1."""
    cmds = [args for instruction, args in repo.dockerfile if instruction == "CMD"]
    argv = exec_form(cmds[-1]) if cmds else None
    if argv is None:
        return ["Dockerfile: no CMD in exec form (JSON array)"]
    problems = cli_problems(argv, "Dockerfile CMD")
    if argv[1:2] != ["run"] or "--once" in argv:
        problems.append(f"Dockerfile CMD: {argv} is not the daemon (`monitor run`)")
    if any(instruction == "ENTRYPOINT" for instruction, _ in repo.dockerfile):
        problems.append("Dockerfile: an ENTRYPOINT would wrap the CMD")
    for name, svc in built_here(repo).items():
        problems += [f"{name}: overrides {key}" for key in ("command", "entrypoint") if key in svc]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("scripts", {})
    if "monitor" not in scripts:
        problems.append("pyproject.toml: no `monitor` console script for the CMD to run")
    return problems


def copy_problems(repo: Repo) -> list[str]:
    """Everything the Dockerfile copies from the build context exists."""
    problems: list[str] = []
    for instruction, args in repo.dockerfile:
        if instruction in ("COPY", "ADD") and "--from" not in args:
            *sources, _ = [a for a in shlex.split(args) if not a.startswith("--")]
            problems += [f"Dockerfile {instruction}: {s} is missing" for s in sources
                         if not (ROOT / s).exists()]
    return problems


CHECKS: dict[str, Callable[[Repo], list[str]]] = {
    "monitor_builds_from_the_repo": monitor_build_problems,
    "storage_and_feeds_are_mounted": mount_problems,
    "monitor_runs_as_non_root": non_root_problems,
    "healthcheck_runs_a_real_monitor_command": healthcheck_problems,
    "mail_catcher_exposes_smtp": mail_catcher_problems,
    "postgres_profile_has_database_and_replica": postgres_problems,
    "variables_are_documented": lambda r: documentation_problems(
        r, referenced(r) | named_env(r, built=True)
    ),
    "secrets_are_references": secret_problems,
    "image_cmd_runs_the_daemon": cmd_problems,
    "dockerfile_copies_existing_files": copy_problems,
}


@pytest.fixture(scope="module")
def repo() -> Repo:
    return read_repo()


@pytest.mark.parametrize("check", CHECKS)
def test_shipped_compose_and_dockerfile(repo: Repo, check: str) -> None:
    assert CHECKS[check](repo) == []


def test_environment_of_third_party_images_is_documented(repo: Repo) -> None:
    assert documentation_problems(repo, named_env(repo, built=False)) == []


def test_no_password_is_written_as_a_default(repo: Repo) -> None:
    # a `${VAR:?}` would not do: compose interpolates every service before it applies
    # profiles, so a required variable in the postgres profile would break `docker compose up`
    assert default_secret_problems(repo) == []


def test_anchors_and_merge_keys_are_resolved(repo: Repo) -> None:
    monitor, replica = services(repo)["monitor"], services(repo)["monitor-replica"]
    assert monitor["build"] == replica["build"] == "."
    assert mounts(monitor) == mounts(replica)
    assert environment(replica)["MONITOR_CONFIG"] == environment(monitor)["MONITOR_CONFIG"]
    assert environment(replica)["MONITOR_DATABASE_URL"] != environment(monitor)[
        "MONITOR_DATABASE_URL"
    ]


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate keys"):
        yaml.load("a: 1\nb: 2\na: 3\n", _ComposeLoader)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A}", {}, ""),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A-d}", {}, "d"),
        ("${A:+r}", {"A": "x"}, "r"),
        ("${A:+r}", {}, ""),
        ("$$A and $A", {"A": "x"}, "$A and x"),
        ("pg://u:${P:-p}@h/db", {}, "pg://u:p@h/db"),
        ("${A:-x${B}y}", {"B": "b"}, "xby"),
        ("${A:-x${B:-${C}}y}", {"C": "c"}, "xcy"),
        ("${A:-x${B}y}", {"A": "$B"}, "$B"),
    ],
)
def test_interpolation_follows_compose(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


def test_required_variable_without_a_value_is_an_error() -> None:
    with pytest.raises(ValueError, match="required"):
        interpolate("${A:?set A}", {"A": ""})


def test_dockerfile_continuations_are_joined() -> None:
    text = "FROM x\n# note\nENV A=1 \\\n    B=2\nCMD [\"monitor\", \"run\"]\n"
    assert dockerfile_instructions(text) == [
        ("FROM", "x"), ("ENV", "A=1      B=2"), ("CMD", '["monitor", "run"]')
    ]


# Broken copies: every check must catch what it is there for.


def _set(service: str, **values: Any) -> Callable[[Repo], None]:
    return lambda r: services(r)[service].update(values)


def _env(service: str, **values: str) -> Callable[[Repo], None]:
    return lambda r: services(r)[service]["environment"].update(values)


def _docker(instruction: str, args: str) -> Callable[[Repo], None]:
    """Replace the last `instruction` (or add one) in the parsed Dockerfile."""

    def mutate(r: Repo) -> None:
        at = [i for i, (name, _) in enumerate(r.dockerfile) if name == instruction]
        if at:
            r.dockerfile[at[-1]] = (instruction, args)
        else:
            r.dockerfile.append((instruction, args))

    return mutate


def _without_heartbeat(r: Repo) -> None:
    services(r)["monitor"]["environment"].pop("MONITOR_HEARTBEAT")
    _docker("ENV", "MONITOR_CONFIG=/app/feeds.toml")(r)


_CONFIG_RO = "./feeds.toml:/app/feeds.toml:ro"
_HEALTH = "monitor healthcheck"
_BUILD, _MOUNT, _USER, _CHECK = (
    monitor_build_problems, mount_problems, non_root_problems, healthcheck_problems
)
_MAIL, _PG, _DOCS, _SECRET, _CMD = (
    mail_catcher_problems, postgres_problems, CHECKS["variables_are_documented"],
    secret_problems, cmd_problems,
)
# (what breaks, how, the check that must catch it, a fragment of the problem it reports)
BROKEN: list[tuple[str, Callable[[Repo], object], Callable[[Repo], list[str]], str]] = [
    ("built-elsewhere", _set("monitor", build="./elsewhere"), _BUILD, "not the repo"),
    ("monitor-in-profile", _set("monitor", profiles=["extra"]), _BUILD, "in a profile"),
    ("feeds-writable", _set("monitor", volumes=["./storage:/app/storage", "./feeds.toml:/f"]),
     _MOUNT, "./feeds.toml is not mounted read-only"),
    ("storage-unmounted", _set("monitor", volumes=[_CONFIG_RO]), _MOUNT, "./storage is not"),
    ("database-outside-storage-mount", _set("monitor", volumes=["./storage:/data", _CONFIG_RO]),
     _MOUNT, "events.db is outside /data"),
    ("config-where-monitor-does-not-look",
     _set("monitor", volumes=["./storage:/app/storage", "./feeds.toml:/etc/f.toml:ro"]),
     _MOUNT, "MONITOR_CONFIG is not the mounted /etc/f.toml"),
    ("compose-user-root", _set("monitor", user="0:0"), _USER, "'0:0' is root"),
    ("compose-user-not-image-user", _set("monitor", user="1000"), _USER, "uid 1000 is not"),
    ("image-user-root", _docker("USER", "root"), _USER, "USER root runs as root"),
    ("image-user-unknown", _docker("USER", "nobody2"), _USER, "unknown uid"),
    ("healthcheck-unknown-command", _set("monitor", healthcheck={"test": [
        "CMD", "monitor", "healthz"]}), _CHECK, "`monitor healthz` is not a command"),
    ("healthcheck-bad-option-value", _set("monitor", healthcheck={"test": [
        "CMD", "monitor", "health", "--max-age", "x"]}), _CHECK, "valid integer"),
    ("healthcheck-unknown-option", _set("monitor", healthcheck={"test": [
        "CMD", "monitor", "health", "--stale"]}), _CHECK, "No such option: --stale"),
    ("healthcheck-not-monitor", _set("monitor", healthcheck={"test": [
        "CMD-SHELL", "curl -f localhost"]}), _CHECK, "does not run the `monitor` command"),
    ("healthcheck-disabled", _set("monitor", healthcheck={"disable": True}), _CHECK,
     f"{_HEALTH}: none"),
    ("healthcheck-without-heartbeat", _without_heartbeat, _CHECK, "without MONITOR_HEARTBEAT"),
    ("image-healthcheck-shell-form", _docker("HEALTHCHECK", "CMD monitor health"), _CHECK,
     "no HEALTHCHECK CMD in exec form"),
    ("no-catcher", lambda r: services(r).pop("mailcatcher"), _MAIL, "no mail catcher"),
    ("catcher-smtp-closed", _set("mailcatcher", expose=[], ports=["127.0.0.1:8025:8025"]),
     _MAIL, "SMTP port 1025 is not exposed"),
    ("readme-suggests-wrong-host",
     lambda r: setattr(r, "readme", r.readme.replace('"mailcatcher"', '"smtp"')),
     _MAIL, "README: the email channel it suggests"),
    ("replica-uses-another-database", _env("monitor-replica", MONITOR_DATABASE_URL=(
        "${MONITOR_DATABASE_URL:-postgresql://monitor:monitor@localhost:5432/monitor}")),
     _PG, "'localhost'"),
    ("replica-names-another-database", _env("postgres", POSTGRES_DB="other"), _PG, "'/other'"),
    ("replica-does-not-wait-for-health", _set("monitor-replica", depends_on=["postgres"]),
     _PG, "does not wait for postgres to be healthy"),
    ("replica-without-monitor-environment", _set("monitor-replica", environment={
        "MONITOR_DATABASE_URL": "postgresql://monitor:monitor@postgres/monitor"}),
     _PG, "lacks the monitor's environment"),
    ("postgres-outside-profile", lambda r: services(r)["postgres"].pop("profiles"), _PG,
     "0 PostgreSQL services"),
    ("pgdata-undeclared", lambda r: r.compose.pop("volumes"), _PG, "declared named volume"),
    ("undocumented-environment-key", _env("monitor", MONITOR_NEW="1"), _DOCS, "MONITOR_NEW"),
    ("undocumented-reference", _set("mailcatcher", image="axllent/mailpit:${MAILPIT_TAG}"),
     _DOCS, "MAILPIT_TAG"),
    ("secret-written", _env("monitor", MONITOR_SMTP_PASSWORD="hunter2"), _SECRET,
     "MONITOR_SMTP_PASSWORD is written in the file"),
    ("secret-partly-written", _env("postgres", POSTGRES_PASSWORD="x${POSTGRES_PASSWORD}"),
     _SECRET, "POSTGRES_PASSWORD is written in the file"),
    ("cmd-shell-form", _docker("CMD", "monitor run"), _CMD, "no CMD in exec form"),
    ("cmd-runs-once", _docker("CMD", '["monitor", "run", "--once"]'), _CMD, "not the daemon"),
    ("cmd-not-the-daemon", _docker("CMD", '["monitor", "check"]'), _CMD, "not the daemon"),
    ("cmd-option-without-value", _docker("CMD", '["monitor", "run", "--log-format"]'), _CMD,
     "requires an argument"),
    ("entrypoint-added", _docker("ENTRYPOINT", '["tini", "--"]'), _CMD, "ENTRYPOINT"),
    ("compose-overrides-command", _set("monitor", command=["sleep", "infinity"]), _CMD,
     "monitor: overrides command"),
    ("copy-missing-file", _docker("COPY", "missing.txt ./"), copy_problems,
     "missing.txt is missing"),
]


@pytest.mark.parametrize(
    ("mutate", "check", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in BROKEN]
)
def test_broken_copy_is_caught(
    repo: Repo,
    mutate: Callable[[Repo], object],
    check: Callable[[Repo], list[str]],
    fragment: str,
) -> None:
    broken = copy.deepcopy(repo)
    mutate(broken)
    assert check(repo) == []
    found = check(broken)
    assert any(fragment in problem for problem in found), found
