"""Print the imports between top-level packages and check that none goes up a layer.

The packages and layers are read from `[tool.importlinter]` in pyproject.toml, so this table
and `lint-imports` judge the same arrows; the table adds how many imports each arrow carries,
which is what README's "Architecture" diagram is checked against. Run from the repository root:

    python tools/import_graph.py
"""

from __future__ import annotations

import sys
import tomllib
from collections import Counter
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def _layers() -> tuple[list[str], dict[str, int]]:
    """The root packages and each one's layer rank (0 is the top)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c["layers"] for c in config["contracts"] if c["type"] == "layers")
    rank = {
        package.strip(): index for index, layer in enumerate(layers) for package in layer.split("|")
    }
    return config["root_packages"], rank


def edges(packages: list[str]) -> Counter[tuple[str, str]]:
    """How many module-to-module imports go from each top-level package to each other one."""
    graph = grimp.build_graph(*packages, include_external_packages=False)
    counts: Counter[tuple[str, str]] = Counter()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            source, target = module.split(".")[0], imported.split(".")[0]
            if source != target:
                counts[source, target] += 1
    return counts


def main() -> int:
    """Print the edge list with each arrow's direction; exit 1 if any goes up or sideways."""
    sys.path.insert(0, str(ROOT))
    packages, rank = _layers()
    counts = edges(packages)
    wrong = 0
    print(f"{'from':<14} {'to':<14} {'imports':>7}  direction")
    for (source, target), count in sorted(
        counts.items(), key=lambda e: (rank[e[0][0]], rank[e[0][1]])
    ):
        down = rank[source] < rank[target]
        wrong += not down
        print(f"{source:<14} {target:<14} {count:>7}  {'down' if down else 'UP OR SIDEWAYS'}")
    print(f"{len(counts)} arrows, {sum(counts.values())} imports, {wrong} against the layers")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
