"""Write tests/data/gadre-2024/runs.csv from a checkout of github.com/mlfoundations/scaling (Gadre et al. 2024,
arXiv 2403.08540), commit 79adc26378fb1286fd9a31d0e40e86663d48dcf1 (the commit of scaling_explorer.ipynb whose
stored output the test compares to).

    python scripts/extract_gadre_2024.py PATH/TO/scaling [--out tests/data/gadre-2024/runs.csv] [RUN ...]

Each run is one file exp_data/models/RUN.json. Fields, as the repository's own loader reads them:
    params                 = hyperparameters.params (parameters including embeddings: the N of the fits)
    tokens                 = hyperparameters.tokens (training tokens D; D = 20·chinchilla_multiplier·N exactly)
    chinchilla_multiplier  = hyperparameters.chinchilla_multiplier (the token multiplier M is 20× it)
    model                  = hyperparameters.model, its file stem ("training/open_lm_configs/d=96_l=8_h=4.json" -> d=96_l=8_h=4)
    loss_c4_val            = results[i].loss for the entry whose val_data[0] lies in a directory named c4_val
                             ("C4 eval": the loss the paper's default fits use)
The default runs are RedPajama's: the five the default loss fit uses (Table 2 of the paper; in the repository,
four sizes at M = 20 and the 0.011B model at M = 320) and the two runs it predicts (1.4B at M = 640, 6.9B at M = 20).
The project never runs this script at test time; the CSV it wrote is committed.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

RUNS = (
    "rpj-d=96_l=8_h=4-1.0", "rpj-d=512_l=8_h=4-1.0", "rpj-d=576_l=24_h=8-1.0", "rpj-d=1024_l=24_h=8-1.0",
    "rpj-d=96_l=8_h=4-16.0",
    "rpj-open_lm_1b-32.0", "rpj-open_lm_7b-1.0",
)
COLUMNS = ("dataset", "name", "model", "params", "tokens", "chinchilla_multiplier", "multiplier", "loss_c4_val")


def row(path: Path) -> dict:
    run = json.loads(path.read_text())
    hp = run["hyperparameters"]
    c4 = [r["loss"] for r in run["results"] if Path(r["val_data"][0]).parent.name == "c4_val"]
    if len(c4) != 1:
        raise SystemExit(f"{path}: expected one c4_val result, found {len(c4)}")
    return {"dataset": run["dataset_name"], "name": run["name"], "model": Path(hp["model"]).stem,
            "params": hp["params"], "tokens": hp["tokens"], "chinchilla_multiplier": hp["chinchilla_multiplier"],
            "multiplier": 20 * hp["chinchilla_multiplier"], "loss_c4_val": repr(float(c4[0]))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path, help="a clone of github.com/mlfoundations/scaling")
    ap.add_argument("runs", nargs="*", default=list(RUNS), help="run names (files exp_data/models/RUN.json)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "tests/data/gadre-2024/runs.csv")
    args = ap.parse_args(argv)
    rows = [row(args.checkout / "exp_data" / "models" / f"{name}.json") for name in args.runs]
    with args.out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} runs to {args.out}")


if __name__ == "__main__":
    main()
