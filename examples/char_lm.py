"""Character-level language model trained with truncated backpropagation
through time, then sampled with a temperature.

The model is a jaxrnn.blocks.SequenceModel: a character embedding of width
d_model (--hidden-size), --layers pre-norm residual blocks around an LSTM
or GRU (a width-4 causal convolution, the cell, a GeGLU MLP), or Griffin's
blocks (--cell griffin), a final RMS norm and a linear read-out to the
vocabulary. Training runs it over chunks with jaxrnn.scan, the carry passed
from each chunk to the next; sampling runs its one-step form,
model(params, carry, token), one character at a time.

The corpus is the Python standard library's own source files, found at run
time (nothing is downloaded), or with ``--corpus shakespeare`` 18 plays
shipped in examples/data; the last 5% of the text is held out and scored in
bits per character.

A block's cell takes no recurrent regularisers, so the regulariser flags
(--dropout, --input-dropout, --output-dropout, --recurrent-dropout,
--zoneout, --weight-dropout) need ``--model stacked``: an embedding, a
jaxrnn.Stacked of the cells (which takes them) and a linear read-out,
the model examples/regularisers.py trains with and without each one.

  python examples/char_lm.py                       # ~5 minutes on one CPU core
  python examples/char_lm.py --cell gru --layers 3 --hidden-size 512 --steps 20000
  python examples/char_lm.py --cell griffin --corpus shakespeare
  python examples/char_lm.py --model stacked --recurrent-dropout 0.25 --zoneout 0.05
  python examples/char_lm.py --smoke
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
from jaxrnn import blocks
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


CELLS = {"lstm": jaxrnn.LSTMCell, "gru": jaxrnn.GRUCell}
REGULARISERS = ("dropout", "input_dropout", "output_dropout", "recurrent_dropout",
                "zoneout", "weight_dropout")


def make_model(args, vocab_size: int):
  """``--model blocks`` (the default): ``--layers`` blocks between an
  embedding and a read-out to the vocabulary; ``--model stacked``: the
  :class:`StackedLM` of examples/regularisers.py."""
  if args.model == "stacked":
    return StackedLM(CELLS[args.cell](), vocab_size, args)
  if args.cell == "griffin":
    block = blocks.GriffinBlock()
  else:
    block = blocks.PreNormBlock(CELLS[args.cell](), conv_size=4, mlp="geglu", expansion=2.0)
  return blocks.SequenceModel((block,) * args.layers, d_model=args.hidden_size,
                              num_outputs=vocab_size, vocab_size=vocab_size)


def unroll(model, params, carry, tokens, key=None):
  """``(carry, logits)`` over ``tokens`` ``(batch, T)``: the sequence form;
  ``key`` draws the stacked model's dropout masks (``None``: none)."""
  if isinstance(model, StackedLM):
    return model.sequence(params, carry, tokens, key=key)
  return jaxrnn.scan(model, params, tokens, initial_carry=carry)


class StackedLM:
  """Embedding -> Stacked recurrent layers -> Linear read-out to the
  vocabulary, with the cell-level regularisers; the model of
  examples/regularisers.py (``--model stacked``). Its step form matches
  :class:`jaxrnn.blocks.SequenceModel`'s: ``model(params, carry, token)``."""

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

  def initial_carry(self, params, batch_shape=()):
    return self.stack.initial_carry(params["rnn"], batch_shape)

  def sequence(self, params, carry, tokens, key=None):
    carry, hs = self.stack(params["rnn"], params["embed"][tokens], initial_carry=carry,
                           key=key, deterministic=key is None)
    return carry, self.readout(params["out"], hs)

  def __call__(self, params, carry, token):
    """One step, as a sequence of one in a batch of one (as regularisers.py's
    published samples were drawn)."""
    carry = jax.tree.map(lambda a: a[None], carry)
    carry, logits = self.sequence(params, carry, jnp.reshape(token, (1, 1)))
    return jax.tree.map(lambda a: a[0], carry), logits[0, -1]


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--model", choices=("blocks", "stacked"), default="blocks",
                      help="a SequenceModel of blocks, or the Stacked cells of "
                           "examples/regularisers.py (which take the regularisers)")
  parser.add_argument("--cell", choices=("lstm", "gru", "griffin"), default="lstm",
                      help="griffin: Griffin's blocks (De et al. 2024), --model blocks only")
  parser.add_argument("--layers", type=int, default=2, help="blocks, or stacked layers")
  parser.add_argument("--hidden-size", type=int, default=192,
                      help="d_model (blocks), or the cells' hidden size (stacked)")
  parser.add_argument("--embed-size", type=int, default=32,
                      help="--model stacked (the blocks' embedding is d_model wide)")
  parser.add_argument("--dropout", type=float, default=0.0,
                      help="stacked: between layers, a new mask at every step (torch's)")
  parser.add_argument("--input-dropout", type=float, default=0.0,
                      help="stacked, variational: one mask per sequence on each layer's input")
  parser.add_argument("--output-dropout", type=float, default=0.0,
                      help="stacked, variational: one mask per sequence on each layer's output")
  parser.add_argument("--recurrent-dropout", type=float, default=0.0,
                      help="stacked, variational, on h in the recurrent matmul "
                           "(Gal & Ghahramani 2016)")
  parser.add_argument("--zoneout", type=float, default=0.0,
                      help="stacked (Krueger et al. 2017)")
  parser.add_argument("--weight-dropout", type=float, default=0.0,
                      help="stacked: DropConnect on the recurrent weights (AWD-LSTM)")
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
  if args.model == "stacked" and args.cell == "griffin":
    parser.error("--cell griffin: a block, for --model blocks only")
  if args.model == "blocks" and regularised(args):
    parser.error("the regularisers act on the cells of a jaxrnn.Stacked: add --model stacked")
  if args.smoke:
    args.steps, args.hidden_size, args.corpus_chars, args.sample_length = 5, 32, 60_000, 40
  return args


def regularised(args) -> bool:
  return any(getattr(args, name) for name in REGULARISERS)


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
  print(f"corpus: {len(text):,} characters ({args.corpus}), "
        f"vocabulary {len(vocab)}, held out {len(held_out):,}")

  model = make_model(args, len(vocab))
  key = jax.random.key(args.seed)
  params = model.init(key)
  optimizer = train.make_optimizer(args.learning_rate, clip_norm=1.0, total_steps=args.steps,
                                   warmup_steps=min(100, args.steps // 10))
  state = train.create_train_state(params, optimizer)

  def loss_fn(params, carry, batch):
    chunk, key = batch
    carry, logits = unroll(model, params, carry, chunk[:, :-1], key=key)
    loss, metrics = train.language_model_loss(logits, chunk[:, 1:])
    return loss, (carry, metrics)

  step = train.make_tbptt_train_step(loss_fn, optimizer)
  chunks = train.stream_chunks(train_tokens, args.chunk_length, args.batch_size)
  carry = model.initial_carry(params, (args.batch_size,))
  history = train.History()
  from tqdm.auto import tqdm
  bar = tqdm(range(args.steps), disable=args.no_progress, desc="train")
  running = []
  for i in bar:
    chunk = next(chunks, None)
    if chunk is None:  # one pass over the stream done: start again from zero state
      chunks = train.stream_chunks(train_tokens, args.chunk_length, args.batch_size)
      chunk, carry = next(chunks), model.initial_carry(params, (args.batch_size,))
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
    carry, logits = unroll(model, params, carry, chunk[:, :-1])
    _, metrics = train.language_model_loss(logits, chunk[:, 1:])
    return carry, metrics["bits_per_token"]

  eval_chunks = list(train.stream_chunks(held_out, args.chunk_length, 1))
  carry = model.initial_carry(state.params, (1,))
  bits = []
  for chunk in eval_chunks:
    carry, b = score(state.params, carry, jnp.asarray(chunk))
    bits.append(float(b))
  bpc = float(np.mean(bits))
  train_seconds = time.perf_counter() - start
  print(f"held-out bits per character: {bpc:.3f} (uniform over the vocabulary: "
        f"{math.log2(len(vocab)):.2f})")

  # Sampling with temperature, one character at a time: the step form.
  @jax.jit
  def next_char(params, carry, token, key):  # one sequence, no batch axes
    carry, logits = model(params, carry, token)
    return carry, jax.random.categorical(key, logits / args.temperature)

  prompt = "def "
  carry = model.initial_carry(state.params)
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
             "seconds": train_seconds, "steps": args.steps, "model": args.model,
             "cell": args.cell, "layers": args.layers, "hidden_size": args.hidden_size,
             "regularisers": {k: getattr(args, k) for k in REGULARISERS},
             "sample": text_sample}
  (results / "summary.json").write_text(json.dumps(summary, indent=1))
  print(f"wrote {results}/summary.json, metrics.json, metrics.csv, bits_per_char.png")
  return summary


if __name__ == "__main__":
  main()
