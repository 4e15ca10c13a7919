"""The house rules that keep the code one way to do each thing, checked on the code itself."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from analysis.explanations import METHODS

ROOT = Path(__file__).parents[1]
# The code that uses the explanation methods: none of it may name one but through its declaration.
CONSUMERS = [ROOT / "app.py", *sorted((ROOT / "viewer").rglob("*.py")), *sorted((ROOT / "viewer").rglob("*.js")),
             *sorted((ROOT / "bench").rglob("*.py")), *sorted((ROOT / "training").rglob("*.py"))]
LONGEST_PAGE_FUNCTION = 60


def test_a_method_is_named_only_in_its_declaration():
    named = []
    for path in CONSUMERS:
        text = path.read_text(encoding="utf-8")
        for name in METHODS:
            if re.search(rf"[\"']{re.escape(name)}[\"']", text):
                named.append(f"{path.relative_to(ROOT)}: {name}")
    assert not named, named


def test_no_function_of_the_page_is_longer_than_sixty_lines():
    tree = ast.parse((ROOT / "viewer" / "ui.py").read_text(encoding="utf-8"))
    lengths = {node.name: node.end_lineno - node.lineno + 1 for node in ast.walk(tree)
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert "build_demo" in lengths
    assert {name: lines for name, lines in lengths.items() if lines > LONGEST_PAGE_FUNCTION} == {}
