"""The layering holds: no import cycle, and reading results never loads torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.testing import import_graph

ROOT = Path(__file__).resolve().parents[1]


def test_packages_form_layers_without_cycles():
    edges = import_graph.graph()
    _, cyclic = import_graph.layers(edges)
    assert cyclic == set() and import_graph.module_cycles() == []
    # The configuration schema is the leaf: it imports nothing of harness.
    assert edges["config"] == set()
    for reader in ("analysis", "dashboard", "store"):
        assert not edges[reader] & {"runner", "models", "distill", "data", "cache", "study"}


def test_a_cycle_is_found(monkeypatch):
    monkeypatch.setattr(import_graph, "graph", lambda: {"a": {"b"}, "b": {"a"}, "c": set()})
    found, cyclic = import_graph.layers(import_graph.graph())
    assert found == [["c"]] and cyclic == {"a", "b"}


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("harness.cli", ["torch", "timm", "torchvision", "optuna"]),
        ("harness.analysis", ["torch", "timm", "torchvision"]),
        ("harness.dashboard", ["torch", "timm", "torchvision"]),
        ("harness.store", ["torch", "optuna"]),
    ],
)
@pytest.mark.e2e
def test_reading_packages_do_not_load_torch(module, absent):
    loaded = f"[m for m in {absent!r} if m in sys.modules]"
    code = f"import sys, json, {module}; print(json.dumps({loaded}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_the_architecture_picture_is_what_the_import_graph_prints():
    printed = subprocess.run(
        [sys.executable, "-m", "harness.testing.import_graph"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    text = (ROOT / "docs" / "architecture.md").read_text()
    picture = text.split("<!-- import-graph -->\n```\n", 1)[1].split(
        "\n```\n<!-- /import-graph -->"
    )[0]
    assert picture == printed, (
        "docs/architecture.md: paste `python -m harness.testing.import_graph`"
    )
