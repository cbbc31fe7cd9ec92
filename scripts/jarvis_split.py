"""Write one side of the seeded jarvis-tc split as a jarvis-tc folder of its own.

``bete train --split`` splits the union of all ``--data`` sources; to train on every fast-v1
record plus the training side of jarvis-tc only (as ``benchmarks/model_accuracy.py`` does),
write that side first::

    python scripts/jarvis_split.py ../shared/datasets/jarvis-tc jarvis-train --side train
    bete train --data fast-v1 --data jarvis-train ...
    bete evaluate --model M --data ../shared/datasets/jarvis-tc --split test --test-fraction 0.2

The split is :func:`stores.datasets.split_records` on the jarvis rows alone (the same rows as
``bete evaluate --data JARVIS --split test --test-fraction F --split-seed S``); lines are copied
unchanged, in file order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    """Write the chosen side; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", help="jarvis-tc folder (records.jsonl)")
    p.add_argument("out", help="folder to write (records.jsonl); must not exist")
    p.add_argument("--side", choices=("train", "test"), default="train")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--split-seed", type=int, default=0)
    args = p.parse_args(argv)
    from stores.datasets import load_records, split_records

    train, test = split_records(load_records(args.source), args.test_fraction, args.split_seed)
    keep = {r.id for r in (train if args.side == "train" else test)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=False)
    lines = Path(args.source, "records.jsonl").read_text().splitlines()
    chosen = [line for line in lines if line.strip() and json.loads(line).get("jid") in keep]
    (out / "records.jsonl").write_text("\n".join(chosen) + "\n")
    print(f"{len(chosen)} of {len(lines)} rows ({args.side} side, fraction "
          f"{args.test_fraction}, seed {args.split_seed}) -> {out / 'records.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
