"""The direction of imports and the purity of the core, read from the source with `ast`.

Layers, lowest first (STYLE.md "Layout"): vocabulary ← pure core ← edges ← orchestration ←
entry points. A module may import its own layer or a lower one; nothing imports the CLI or the
daemon; the pure core reads no clock, environment, network or disk. Modules are parsed, never
imported, so the walk also sees imports inside functions and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monitor"

VOCABULARY, CORE, EDGE, ORCHESTRATION, ENTRY = range(5)
LAYER_NAMES = ("vocabulary", "pure core", "edge", "orchestration", "entry point")
_PLACES: dict[int, tuple[str, ...]] = {
    VOCABULARY: ("errors", "eventbase", "events", "upcast"),
    CORE: (
        "identity", "textfold", "terms", "match", "milestones", "projections", "outbox", "evaluate",
        "config", "redact", "oneline", "pathsecrets",
        "chunks", "rules", "prefilter", "revisions",
    ),
    EDGE: (
        "fetch", "bodies", "connect", "netguard", "parse", "feedtuning", "entries", "jsonfeed",
        "feedtext",
        "htmlmarkup",
        "screen", "notafeed", "store",
        "channels", "workstate", "alertwork",
    ),
    ORCHESTRATION: (
        "poll", "pollrecord", "items", "deliver", "sending", "record", "runtime", "reports", "review",
        "logs", "faults", "clients", "ticks", "reload",
    ),
    ENTRY: ("daemon", "cli", "__main__"),
}
# `monitor` itself holds a docstring and __version__ only.
LAYERS = {"monitor": VOCABULARY} | {
    f"monitor.{name}": layer for layer, names in _PLACES.items() for name in names
}
PURE_CORE = tuple(
    f"monitor.{name}"
    for name in (
        "identity", "textfold", "terms", "match", "milestones", "outbox", "evaluate", "projections",
        "chunks", "redact", "rules", "prefilter", "oneline", "pathsecrets", "revisions",
    )
)
# Modules (and their submodules) that reach a clock, the environment, the network or the disk.
IMPURE_MODULES = frozenset({
    "os", "sys", "time", "socket", "ssl", "subprocess", "shutil", "tempfile", "pathlib",
    "asyncio", "smtplib", "http.client", "urllib.request", "httpx", "httpcore", "aiohttp",
    "requests", "sqlalchemy", "sqlmodel", "psycopg",
})
IMPURE_CALLS = frozenset({
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today",
    "datetime.date.today", "datetime.now", "datetime.utcnow", "date.today",
    "time.time", "time.time_ns", "time.monotonic", "time.perf_counter", "time.localtime",
    "os.getenv", "os.environ.get", "open", "io.open", "builtins.open",
})
IMPURE_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The layer of the longest registered prefix; an unplaced module is a test failure."""
    for prefix in sorted(LAYERS, key=len, reverse=True):
        # `monitor` holds only itself: a new top-level module must be placed by name
        if module == prefix or (prefix != "monitor" and module.startswith(prefix + ".")):
            return LAYERS[prefix]
    raise AssertionError(f"{module}: not placed in a layer; add it to LAYERS in this test")


@dataclass(frozen=True)
class Imported:
    target: str  # a module, or `module.name` for `from module import name`
    line: int


def imports(tree: ast.Module, module: str) -> list[Imported]:
    """Every import anywhere in the tree, relative ones resolved against `module`."""
    is_package = module in MODULES and MODULES[module].name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: list[Imported] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Imported(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found += [Imported(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def monitor_imports(tree: ast.Module, module: str) -> list[Imported]:
    """The `monitor.*` modules imported; `from monitor import x` counts as monitor.x."""
    found: list[Imported] = []
    for imp in imports(tree, module):
        if imp.target.split(".")[0] != "monitor":
            continue
        target = imp.target
        while target not in MODULES and "." in target:
            target = target.rpartition(".")[0]
        found.append(Imported(target, imp.line))
    return found


def impurities(tree: ast.Module) -> list[str]:
    """Imports and calls in `tree` that reach a clock, the environment, the network or disk."""
    aliases: dict[str, str] = {}
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                # `import a.b` binds `a`; `import a.b as c` binds `c` to `a.b`.
                bound = alias.asname or alias.name.split(".")[0]
                aliases[bound] = alias.name if alias.asname else bound
                found += _impure_module(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += _impure_module(node.module, node.lineno)
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func, aliases)
            if name in IMPURE_CALLS:
                found.append(f"line {node.lineno}: calls {name}()")
            elif isinstance(node.func, ast.Attribute) and node.func.attr in IMPURE_METHODS:
                found.append(f"line {node.lineno}: calls .{node.func.attr}()")
        elif isinstance(node, ast.Attribute) and _dotted(node, aliases) == "os.environ":
            found.append(f"line {node.lineno}: reads os.environ")
    return found


def _impure_module(name: str, line: int) -> list[str]:
    parts = name.split(".")
    prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return [f"line {line}: imports {name}"] if prefixes & IMPURE_MODULES else []


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([aliases.get(node.id, node.id), *reversed(attrs)])


def parsed(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))


def test_every_module_is_placed_in_a_layer() -> None:
    assert len(MODULES) > 20
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_nothing_imports_the_cli_or_the_daemon(module: str) -> None:
    if layer_of(module) == ENTRY and module != "monitor.daemon":
        return  # the cli package and __main__ are the entry points that start everything
    bad = [f"line {i.line}: imports {i.target}" for i in monitor_imports(parsed(module), module)
           if layer_of(i.target) == ENTRY]
    assert bad == [], f"{module}: {bad}"


def test_errors_import_nothing_from_monitor() -> None:
    assert monitor_imports(parsed("monitor.errors"), "monitor.errors") == []


VOCABULARY_MODULES = [m for m, layer in LAYERS.items() if layer == VOCABULARY and m != "monitor"]


@pytest.mark.parametrize("module", VOCABULARY_MODULES)
def test_vocabulary_imports_only_vocabulary(module: str) -> None:
    bad = [i.target for i in monitor_imports(parsed(module), module) if layer_of(i.target) > VOCABULARY]
    assert bad == [], f"{module}: {bad}"


@pytest.mark.parametrize("module", PURE_CORE)
def test_pure_core_imports_only_vocabulary_core_and_config(module: str) -> None:
    bad = [f"line {i.line}: imports {i.target}" for i in monitor_imports(parsed(module), module)
           if layer_of(i.target) > CORE]
    assert bad == [], f"{module}: {bad}"


@pytest.mark.parametrize("module", PURE_CORE)
def test_pure_core_reads_no_clock_environment_network_or_disk(module: str) -> None:
    assert impurities(parsed(module)) == [], module


CONFIG_OUTSIDE_LOAD = sorted(
    m for m in MODULES if m.startswith("monitor.config") and m != "monitor.config.load"
)


@pytest.mark.parametrize("module", CONFIG_OUTSIDE_LOAD)
def test_config_outside_load_reads_no_environment_or_disk(module: str) -> None:
    """config.load is the only reader of feeds.toml and of the environment (STYLE.md)."""
    # pathlib is allowed here: Config.path is a Path field, and a type reads nothing.
    found = [hit for hit in impurities(parsed(module)) if not hit.endswith("imports pathlib")]
    assert found == [], module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module: str) -> None:
    """Edges never import orchestration or entry points; no layer imports one above it."""
    own = layer_of(module)
    bad = [f"line {i.line}: imports {i.target} ({LAYER_NAMES[layer_of(i.target)]})"
           for i in monitor_imports(parsed(module), module) if layer_of(i.target) > own]
    assert bad == [], f"{module} ({LAYER_NAMES[own]}): {bad}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_starts_with_a_one_line_docstring(module: str) -> None:
    tree = parsed(module)
    docstring = ast.get_docstring(tree, clean=True)
    assert docstring, f"{module}: no module docstring"
    lines = docstring.splitlines()
    assert lines[0].strip(), f"{module}: the docstring's first line is empty"
    assert len(lines) == 1 or not lines[1].strip(), (
        f"{module}: the summary runs onto a second line; end it and leave a blank line"
    )


# The checker itself must be able to fail: literal sources with and without violations.

@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os", "imports os"),
        ("import os.path as p", "imports os.path"),
        ("from time import monotonic", "imports time"),
        ("import httpx", "imports httpx"),
        ("from sqlalchemy.orm import Session", "imports sqlalchemy.orm"),
        ("from datetime import datetime\ndatetime.now()", "calls datetime.datetime.now()"),
        ("import datetime as dt\ndt.date.today()", "calls datetime.date.today()"),
        ("from datetime import datetime as D\nD.utcnow()", "calls datetime.datetime.utcnow()"),
        ("def f():\n    with open('x') as fh:\n        return fh", "calls open()"),
        ("def f(p):\n    return p.read_text()", "calls .read_text()"),
        ("def f(env=None):\n    import os\n    return os.environ", "reads os.environ"),
    ],
)
def test_impurity_checker_finds_clock_environment_and_disk(source: str, expected: str) -> None:
    found = impurities(ast.parse(source))
    assert any(expected in hit for hit in found), found


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import time\nMIDNIGHT = time(0)",  # datetime.time is a value, not a clock
        "from datetime import datetime\ndef f(now: datetime) -> datetime:\n    return now.replace()",
        "import hashlib\nhashlib.sha256(b'')",
        "def f(clock):\n    return clock.now()",
    ],
)
def test_impurity_checker_accepts_pure_code(source: str) -> None:
    assert impurities(ast.parse(source)) == []


def test_import_walk_sees_imports_inside_functions_and_relative_imports() -> None:
    tree = ast.parse("def f():\n    from monitor import fetch\n    from . import poll\n")
    found = {i.target for i in monitor_imports(tree, "monitor.match")}
    assert found == {"monitor.fetch", "monitor.poll"}
    assert max(layer_of(t) for t in found) > CORE
