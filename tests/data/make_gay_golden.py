"""Write tests/data/gay_colors_golden.json: Gay.jl hash_color for seeds 1069 and 42, indices 0..999.

Run from the repository root after a deliberate change to ff_mcp.gf3.colors:

    python tests/data/make_gay_golden.py

tests/gf3/test_colors.py checks the file against the current code and, independently, against the
hard-coded published vectors, so regenerating it cannot hide a bug. The Clojure tests
(clj/test/ff_mcp/colors_test.clj) check the same file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLDEN_PATH = REPO_ROOT / "tests" / "data" / "gay_colors_golden.json"
SEEDS = (1069, 42)
COUNT = 1000  # indices 0..999

ALGORITHM = (
    "Gay.jl hash_color (src/kernels.jl, color_at fast path): "
    "h = splitmix64(seed XOR (index * 0x9E3779B97F4A7C15 mod 2**64)), where splitmix64(x) adds "
    "0x9E3779B97F4A7C15 then applies the SplitMix64 mix (MIX1 0xBF58476D1CE4E5B9, MIX2 0x94D049BB133111EB); "
    "r = h & 0xFF, g = (h >> 8) & 0xFF, b = (h >> 16) & 0xFF; hex = '#RRGGBB' upper case; "
    "trit = +1 if HSL hue in [0, 60) or [300, 360), 0 if in [60, 180), -1 if in [180, 300) (grey has hue 0)."
)


def golden_document() -> dict:
    """Return the golden data: the algorithm text and, per seed, index/hex/trit for indices 0..COUNT-1."""
    from ff_mcp.gf3.colors import colors

    return {
        "algorithm": ALGORITHM,
        "seeds": {
            str(seed): [{"index": c.index, "hex": c.hex, "trit": c.trit} for c in colors(seed, 0, COUNT)]
            for seed in SEEDS
        },
    }


def render(document: dict) -> str:
    """Return the JSON text with one colour entry per line."""
    lines = ["{", f'  "algorithm": {json.dumps(document["algorithm"])},', '  "seeds": {']
    seed_blocks = []
    for seed, entries in document["seeds"].items():
        rows = ",\n".join(f"      {json.dumps(entry)}" for entry in entries)
        seed_blocks.append(f"    {json.dumps(seed)}: [\n{rows}\n    ]")
    lines.append(",\n".join(seed_blocks))
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    GOLDEN_PATH.write_text(render(golden_document()), encoding="utf-8")
    print(f"wrote {GOLDEN_PATH}")


if __name__ == "__main__":
    main()
