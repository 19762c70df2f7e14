"""The recurrent regularisers on the stacked character LM of
examples/char_lm.py (``--model stacked``: an embedding, a jaxrnn.Stacked of
two LSTMs and a linear read-out; the cells of its default model, blocks, take
no recurrent regularisers): the same model, data, budget and seed, trained
once without regularisation and once with each regulariser, each scored in
held-out bits per character.

  python examples/regularisers.py                  # the table in the README
  python examples/regularisers.py --steps 400      # a quicker look
  python examples/regularisers.py --smoke

Writes table.md, summary.json and one learning-curve plot to --results-dir.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import char_lm  # noqa: E402  (the example next to this one)

# (name, char_lm flags): one regulariser per row, rates from the papers'
# usual ranges for models of this size.
CONFIGS = [
    ("none", []),
    ("variational recurrent 0.25", ["--recurrent-dropout", "0.25"]),
    ("variational input+output 0.2", ["--input-dropout", "0.2", "--output-dropout", "0.2"]),
    ("zoneout 0.1", ["--zoneout", "0.1"]),
    ("DropConnect on W_h 0.3", ["--weight-dropout", "0.3"]),
    ("between layers 0.2 (torch's)", ["--dropout", "0.2"]),
]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--hidden-size", type=int, default=256)
  parser.add_argument("--corpus-chars", type=int, default=600_000)
  parser.add_argument("--only", default="", help="comma-separated row numbers, e.g. 0,3")
  parser.add_argument("--results-dir", default="results/regularisers")
  parser.add_argument("--no-progress", action="store_true", help="(always: one line per run)")
  parser.add_argument("--smoke", action="store_true")
  parser.add_argument("--report-only", action="store_true",
                      help="no training: the table and plot from the runs already in --results-dir")
  args = parser.parse_args(argv)
  out = pathlib.Path(args.results_dir)
  configs = CONFIGS
  if args.only:
    configs = [CONFIGS[int(i)] for i in args.only.split(",")]
  common = ["--model", "stacked", "--steps", str(args.steps),
            "--hidden-size", str(args.hidden_size), "--corpus-chars", str(args.corpus_chars),
            "--no-progress", "--sample-length", "200"]
  if args.smoke:
    common, configs = ["--model", "stacked", "--smoke", "--no-progress"], configs[:2]
  rows = []
  curves = {}
  for i, (name, flags) in enumerate(configs):
    run_dir = out / f"run{i}"
    if args.report_only:
      if not (run_dir / "summary.json").exists():
        continue
      summary = json.loads((run_dir / "summary.json").read_text())
    else:
      print(f"\n=== {name}")
      summary = char_lm.main(common + flags + ["--results-dir", str(run_dir)])
    rows.append({"regulariser": name, **{k: summary[k] for k in (
        "held_out_bits_per_char", "final_train_bits_per_char", "seconds")},
        "sample": summary["sample"]})
    curves[name] = json.loads((run_dir / "metrics.json").read_text())

  table = ["| regulariser | held-out bpc | train bpc (last 50 steps) | seconds |",
           "|---|---|---|---|"]
  table += [f"| {r['regulariser']} | {r['held_out_bits_per_char']:.3f} | "
            f"{r['final_train_bits_per_char']:.3f} | {r['seconds']:.0f} |" for r in rows]
  (out / "table.md").write_text("\n".join(table) + "\n")
  (out / "summary.json").write_text(json.dumps(rows, indent=1))
  print("\n" + "\n".join(table))

  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4))
  for name, records in curves.items():
    ax.plot([r["step"] for r in records], [r["train/bits_per_char"] for r in records],
            label=name)
  ax.set(xlabel="step", ylabel="train bits per character",
         title="character LM: training curves by regulariser")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out / "learning_curves.png", dpi=120)
  plt.close(fig)
  print(f"wrote {out}/table.md, summary.json, learning_curves.png")


if __name__ == "__main__":
  main()
