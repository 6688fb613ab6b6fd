"""List the imports placed inside functions in mnist_hpo/ (the project keeps them only to defer a heavy
optional dependency, each with a comment saying which; docs/architecture.md).

    python tools/function_imports.py [ROOT]     # ROOT: a checkout (default: this one)

Prints each as ``module:line imported`` and the count last.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def function_imports(root: Path) -> list[tuple[str, int, str]]:
    found = []
    for path in sorted((root / "mnist_hpo").rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(), str(path))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    found += [(module, node.lineno, a.name) for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    found.append((module, node.lineno, "." * node.level + (node.module or "")))
    return sorted(set(found))


if __name__ == "__main__":
    imports = function_imports(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
    for module, line, name in imports:
        print(f"{module}:{line} {name}")
    print(f"{len(imports)} imports inside functions")
