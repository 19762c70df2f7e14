"""Character-level language model: a stacked LSTM (or GRU) trained with
truncated backpropagation through time, then sampled with a temperature.

The corpus is the Python standard library's own source files, found at run
time (nothing is downloaded), or with ``--corpus shakespeare`` 18 plays
shipped in examples/data; the last 5% of the text is held out and scored in
bits per character.

  python examples/char_lm.py                       # ~2 minutes on 2 CPU cores
  python examples/char_lm.py --cell gru --layers 3 --hidden-size 512 --steps 20000
  python examples/char_lm.py --recurrent-dropout 0.25 --zoneout 0.05
  python examples/char_lm.py --smoke

examples/regularisers.py trains it with and without each regulariser.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn
from jaxrnn import train


SHAKESPEARE = pathlib.Path(__file__).parent / "data" / "shakespeare.txt.gz"


def load_corpus(max_chars: int, corpus: str = "stdlib") -> str:
  """The first ``max_chars`` characters of a corpus: ``"stdlib"``, the
  concatenated ``*.py`` files of the standard library in sorted order, or
  ``"shakespeare"``, 18 plays shipped in ``examples/data`` (see its README)."""
  if corpus == "shakespeare":
    with gzip.open(SHAKESPEARE, "rt", encoding="utf-8") as f:
      return f.read(max_chars)
  stdlib = pathlib.Path(os.__file__).parent
  text, size = [], 0
  for path in sorted(stdlib.glob("*.py")):
    chunk = path.read_text(encoding="utf-8", errors="ignore")
    text.append(chunk)
    size += len(chunk)
    if size >= max_chars:
      break
  return "".join(text)[:max_chars]


class Model:
  """Embedding -> Stacked recurrent layers -> Linear read-out to the vocabulary."""

  def __init__(self, cell, vocab_size, args):
    regularisers = jaxrnn.RecurrentDropout(
        input=args.input_dropout, output=args.output_dropout,
        recurrent=args.recurrent_dropout, zoneout=args.zoneout,
        weight=args.weight_dropout)
    self.stack = jaxrnn.Stacked([cell] * args.layers, dropout_rate=args.dropout,
                                recurrent_dropout=regularisers)
    self.readout = jaxrnn.Linear()
    self.vocab_size, self.args = vocab_size, args

  def init(self, key):
    k_emb, k_rnn, k_out = jax.random.split(key, 3)
    embed = jax.random.normal(k_emb, (self.vocab_size, self.args.embed_size)) * 0.1
    rnn = self.stack.init(k_rnn, self.args.embed_size, self.args.hidden_size)
    return {"embed": embed, "rnn": rnn,
            "out": self.readout.init(k_out, self.args.hidden_size, self.vocab_size)}

  def initial_carry(self, params, batch_size):
    return self.stack.initial_carry(params["rnn"], (batch_size,))

  def __call__(self, params, carry, tokens, key=None):
    carry, hs = self.stack(params["rnn"], params["embed"][tokens], initial_carry=carry,
                           key=key, deterministic=key is None)
    return carry, self.readout(params["out"], hs)


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
  parser.add_argument("--layers", type=int, default=2)
  parser.add_argument("--hidden-size", type=int, default=192)
  parser.add_argument("--embed-size", type=int, default=32)
  parser.add_argument("--dropout", type=float, default=0.0,
                      help="between layers, a new mask at every step (torch's)")
  parser.add_argument("--input-dropout", type=float, default=0.0,
                      help="variational: one mask per sequence on each layer's input")
  parser.add_argument("--output-dropout", type=float, default=0.0,
                      help="variational: one mask per sequence on each layer's output")
  parser.add_argument("--recurrent-dropout", type=float, default=0.0,
                      help="variational, on h in the recurrent matmul (Gal & Ghahramani)")
  parser.add_argument("--zoneout", type=float, default=0.0, help="Krueger et al.")
  parser.add_argument("--weight-dropout", type=float, default=0.0,
                      help="DropConnect on the recurrent weights (AWD-LSTM)")
  parser.add_argument("--chunk-length", type=int, default=64, help="truncated BPTT length")
  parser.add_argument("--batch-size", type=int, default=32)
  parser.add_argument("--steps", type=int, default=800)
  parser.add_argument("--learning-rate", type=float, default=3e-3)
  parser.add_argument("--corpus", choices=("stdlib", "shakespeare"), default="stdlib",
                      help="the standard library's source, or 18 plays of Shakespeare")
  parser.add_argument("--corpus-chars", type=int, default=2_000_000)
  parser.add_argument("--temperature", type=float, default=0.7)
  parser.add_argument("--sample-length", type=int, default=300)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--results-dir", default="results/char_lm")
  parser.add_argument("--no-progress", action="store_true")
  parser.add_argument("--smoke", action="store_true", help="a few steps, to check that it runs")
  args = parser.parse_args(argv)
  if args.smoke:
    args.steps, args.hidden_size, args.corpus_chars, args.sample_length = 5, 32, 60_000, 40
  return args


def regularised(args) -> bool:
  return any((args.dropout, args.input_dropout, args.output_dropout,
              args.recurrent_dropout, args.zoneout, args.weight_dropout))


def main(argv=None):
  return run(parse_args(argv))


def run(args) -> dict:
  """Trains, scores and samples; writes and returns the summary."""
  start = time.perf_counter()
  text = load_corpus(args.corpus_chars, args.corpus)
  vocab = sorted(set(text))
  index = {c: i for i, c in enumerate(vocab)}
  tokens = np.fromiter((index[c] for c in text), np.int32, len(text))
  split = int(len(tokens) * 0.95)
  train_tokens, held_out = tokens[:split], tokens[split:]
  print(f"corpus: {len(text):,} characters of the standard library's source, "
        f"vocabulary {len(vocab)}, held out {len(held_out):,}")

  cell = jaxrnn.LSTMCell() if args.cell == "lstm" else jaxrnn.GRUCell()
  model = Model(cell, len(vocab), args)
  key = jax.random.key(args.seed)
  params = model.init(key)
  optimizer = train.make_optimizer(args.learning_rate, clip_norm=1.0, total_steps=args.steps,
                                   warmup_steps=min(100, args.steps // 10))
  state = train.create_train_state(params, optimizer)

  def loss_fn(params, carry, batch):
    chunk, key = batch
    carry, logits = model(params, carry, chunk[:, :-1], key=key)
    loss, metrics = train.language_model_loss(logits, chunk[:, 1:])
    return loss, (carry, metrics)

  step = train.make_tbptt_train_step(loss_fn, optimizer)
  chunks = train.stream_chunks(train_tokens, args.chunk_length, args.batch_size)
  carry = model.initial_carry(params, args.batch_size)
  history = train.History()
  from tqdm.auto import tqdm
  bar = tqdm(range(args.steps), disable=args.no_progress, desc="train")
  running = []
  for i in bar:
    chunk = next(chunks, None)
    if chunk is None:  # one pass over the stream done: start again from zero state
      chunks = train.stream_chunks(train_tokens, args.chunk_length, args.batch_size)
      chunk, carry = next(chunks), model.initial_carry(params, args.batch_size)
    drop_key = jax.random.fold_in(key, i) if regularised(args) else None
    state, carry, metrics = step(state, carry, (jnp.asarray(chunk), drop_key))
    running.append(float(metrics["bits_per_token"]))
    if (i + 1) % 50 == 0 or i + 1 == args.steps:
      history.append({"step": i + 1, "train/bits_per_char": float(np.mean(running))})
      bar.set_postfix(bpc=f"{np.mean(running):.3f}")
      running = []

  # Held-out bits per character: one long stream, the carry passed along.
  @jax.jit
  def score(params, carry, chunk):
    carry, logits = model(params, carry, chunk[:, :-1])
    _, metrics = train.language_model_loss(logits, chunk[:, 1:])
    return carry, metrics["bits_per_token"]

  eval_chunks = list(train.stream_chunks(held_out, args.chunk_length, 1))
  carry = model.initial_carry(state.params, 1)
  bits = []
  for chunk in eval_chunks:
    carry, b = score(state.params, carry, jnp.asarray(chunk))
    bits.append(float(b))
  bpc = float(np.mean(bits))
  train_seconds = time.perf_counter() - start
  print(f"held-out bits per character: {bpc:.3f} (uniform over the vocabulary: "
        f"{math.log2(len(vocab)):.2f})")

  # Sampling with temperature, one character at a time.
  @jax.jit
  def next_char(params, carry, token, key):  # a batch of one sequence
    carry, logits = model(params, carry, jnp.reshape(token, (1, 1)))
    return carry, jax.random.categorical(key, logits[0, -1] / args.temperature)

  prompt = "def "
  carry = model.initial_carry(state.params, 1)
  sample, token = list(prompt), None
  for c in prompt:
    carry, token = next_char(state.params, carry, jnp.asarray(index[c]), jax.random.key(0))
  sample_key = jax.random.key(args.seed + 1)
  for i in range(args.sample_length):
    sample.append(vocab[int(token)])
    carry, token = next_char(state.params, carry, token, jax.random.fold_in(sample_key, i))
  text_sample = "".join(sample)
  print(f"\nsample (temperature {args.temperature}):\n{text_sample}\n")

  results = pathlib.Path(args.results_dir)
  history.write(results)
  history.plot(results / "bits_per_char.png", keys=["train/bits_per_char"],
               title="character LM: training bits per character", logy=False)
  summary = {"held_out_bits_per_char": bpc,
             "final_train_bits_per_char": history[-1]["train/bits_per_char"],
             "seconds": train_seconds, "steps": args.steps, "cell": args.cell,
             "layers": args.layers, "hidden_size": args.hidden_size,
             "regularisers": {k: getattr(args, k) for k in (
                 "dropout", "input_dropout", "output_dropout", "recurrent_dropout",
                 "zoneout", "weight_dropout")},
             "sample": text_sample}
  (results / "summary.json").write_text(json.dumps(summary, indent=1))
  print(f"wrote {results}/summary.json, metrics.json, metrics.csv, bits_per_char.png")
  return summary


if __name__ == "__main__":
  main()
