"""The sans-I/O rule, enforced: nothing under atcp/core or atcp/wire imports a clock, a
socket, an event loop, threads or logging configuration, and the layering points one way
(wire <- core <- aio). Checked on the source (AST), so a lazy import inside a function is
caught too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import atcp

PACKAGE = Path(atcp.__file__).resolve().parent

#: Top-level modules whose import would give the core I/O, time or concurrency.
FORBIDDEN = {"asyncio", "socket", "time", "select", "selectors", "threading", "_thread",
             "multiprocessing", "subprocess", "signal", "ssl", "uvloop", "concurrent",
             "logging.config"}
#: Calls that configure logging (allowed nowhere in the core, whatever the import form).
FORBIDDEN_CALLS = {"basicConfig", "dictConfig", "fileConfig", "configure"}
#: Sibling packages of atcp each layer may import (relative or absolute).
ALLOWED_ATCP = {"core": {"core", "wire", "config"}, "wire": {"wire"}}


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def imported_names(tree: ast.AST, layer: str, path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) for every import, relative ones resolved against atcp."""
    depth = len(path.relative_to(PACKAGE).parts) - 1      # packages below atcp/
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ["atcp", *path.relative_to(PACKAGE).parts[:depth]]
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    found += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
                    continue
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
            found += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and node.args \
                    and isinstance(node.args[0], ast.Constant):
                found.append((node.lineno, str(node.args[0].value)))
    return found


def violations(source: str, layer: str, path: Path) -> list[str]:
    tree = ast.parse(source, filename=str(path))
    bad = []
    for line, name in imported_names(tree, layer, path):
        parts = name.split(".")
        if parts[0] in FORBIDDEN or ".".join(parts[:2]) in FORBIDDEN:
            bad.append(f"{path.name}:{line} imports {name}")
        if parts[0] == "atcp" and len(parts) > 1 and parts[1] not in ALLOWED_ATCP[layer]:
            bad.append(f"{path.name}:{line} imports {name} (layering: {layer} -> {parts[1]})")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in FORBIDDEN_CALLS \
                and isinstance(node.func.value, ast.Name) \
                and node.func.value.id in ("logging", "structlog"):
            bad.append(f"{path.name}:{node.lineno} configures logging")
    return bad


@pytest.mark.parametrize("layer", ["core", "wire"])
def test_layer_has_modules(layer: str) -> None:
    assert len(modules(layer)) >= 2


@pytest.mark.parametrize("path", modules("core") + modules("wire"),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_module_is_pure(path: Path) -> None:
    layer = path.relative_to(PACKAGE).parts[0]
    assert violations(path.read_text(), layer, path) == []


# -- the checker itself catches what it should -------------------------------------------------


@pytest.mark.parametrize("source", [
    "import asyncio",
    "import time as _t",
    "from time import monotonic",
    "import socket, os",
    "from select import select",
    "import threading",
    "import logging.config",
    "from logging import config",
    "def f():\n    import selectors\n",
    "import importlib\nimportlib.import_module('socket')",
    "import logging\nlogging.basicConfig()",
    "from ..aio import endpoint",
    "from atcp.testing import link",
])
def test_checker_catches(source: str) -> None:
    fake = PACKAGE / "core" / "fake_module.py"
    assert violations(source, "core", fake)


@pytest.mark.parametrize("source", [
    "import os, random, hashlib, enum, math, bisect, struct, errno",
    "from ..wire import parse",
    "from ..config import Config",
    "from . import events",
    "from .seq import seq_add",
    "import logging\nlog = logging.getLogger(__name__)",
])
def test_checker_allows(source: str) -> None:
    fake = PACKAGE / "core" / "fake_module.py"
    assert violations(source, "core", fake) == []


def test_wire_may_not_import_core() -> None:
    fake = PACKAGE / "wire" / "fake_module.py"
    assert violations("from ..core import stack", "wire", fake)
    assert violations("from ..config import Config", "wire", fake)
    assert violations("from .seq import seq_add", "wire", fake) == []
