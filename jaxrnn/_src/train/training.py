"""Training with optax: steps, losses, truncated BPTT, data parallelism, and a
loop with progress, metrics history, plots and orbax checkpoints.

The pieces compose without the loop: a train step is a jit-compiled pure
function ``(state, batch) -> (state, metrics)``; :func:`fit` adds the
bookkeeping around it.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

PyTree = Any
Metrics = Mapping[str, jax.Array]
LossFn = Callable[[PyTree, PyTree], tuple]  # (params, batch) -> (loss, metrics)


class TrainState(NamedTuple):
  """Everything a training run carries from step to step.

  Attributes:
    step: number of updates applied (int32 scalar).
    params: the model's params.
    opt_state: the optax optimizer's state.
  """

  step: jax.Array
  params: PyTree
  opt_state: PyTree


def create_train_state(params: PyTree, optimizer: optax.GradientTransformation) -> TrainState:
  """Step 0: ``params`` and ``optimizer.init(params)``."""
  return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))


# ------------------------------------------------------------------ losses
def classification_loss(logits: jax.Array, labels: jax.Array):
  """Mean softmax cross-entropy over the batch, and accuracy.

  Args:
    logits: ``(*batch, classes)``.
    labels: integer ``(*batch,)``.
  """
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
  return loss, {"loss": loss, "accuracy": accuracy}


def regression_loss(predictions: jax.Array, targets: jax.Array,
                    mask: Optional[jax.Array] = None):
  """Mean squared error over the valid elements (``mask``, broadcastable)."""
  err = (predictions - targets) ** 2
  if mask is None:
    mse = err.mean()
  else:
    mask = jnp.broadcast_to(mask, err.shape)
    mse = jnp.sum(jnp.where(mask, err, 0)) / jnp.maximum(mask.sum(), 1)
  return mse, {"loss": mse, "mse": mse}


def language_model_loss(logits: jax.Array, targets: jax.Array,
                        mask: Optional[jax.Array] = None):
  """Masked next-token cross-entropy (nats), with bits per token and accuracy.

  Args:
    logits: ``(*batch, T, vocab)``.
    targets: integer ``(*batch, T)``.
    mask: boolean ``(*batch, T)``; padded positions count for nothing.
  """
  nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  mask = jnp.ones(nll.shape, bool) if mask is None else mask
  count = jnp.maximum(mask.sum(), 1)
  loss = jnp.sum(jnp.where(mask, nll, 0)) / count
  accuracy = jnp.sum(jnp.where(mask, jnp.argmax(logits, -1) == targets, False)) / count
  return loss, {"loss": loss, "bits_per_token": loss / jnp.log(2.0), "accuracy": accuracy}


# --------------------------------------------------------------- optimizer
def make_optimizer(learning_rate: float, *, clip_norm: Optional[float] = 1.0,
                   warmup_steps: int = 0, total_steps: Optional[int] = None,
                   weight_decay: float = 0.0) -> optax.GradientTransformation:
  """Adam(W) with global-norm clipping and an optional warmup-cosine schedule.

  With ``total_steps``, the learning rate warms up linearly for
  ``warmup_steps`` and decays by a cosine to 0 at ``total_steps``
  (``optax.warmup_cosine_decay_schedule``); otherwise it is constant.
  """
  schedule = learning_rate
  if total_steps is not None:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0 if warmup_steps else learning_rate, learning_rate, warmup_steps,
        max(total_steps, warmup_steps + 1))
  chain = [optax.clip_by_global_norm(clip_norm)] if clip_norm else []
  chain.append(optax.adamw(schedule, weight_decay=weight_decay))
  return optax.chain(*chain)


# ------------------------------------------------------------------- steps
def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation):
  """A jit-compiled ``(state, batch) -> (state, metrics)``.

  ``loss_fn(params, batch) -> (loss, metrics)``; ``metrics`` gains
  ``grad_norm``. The step runs on whatever devices the inputs live on: give
  it a batch sharded by :func:`shard_batch` and it runs data-parallel.
  """

  @jax.jit
  def train_step(state: TrainState, batch):
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {**metrics, "grad_norm": optax.tree.norm(grads)}
    return TrainState(state.step + 1, params, opt_state), metrics

  return train_step


def make_eval_step(loss_fn: LossFn):
  """A jit-compiled ``(params, batch) -> metrics``."""
  return jax.jit(lambda params, batch: loss_fn(params, batch)[1])


def make_tbptt_train_step(loss_fn: Callable, optimizer: optax.GradientTransformation):
  """Truncated backpropagation through time over a long stream.

  The stream is cut into chunks; each call trains on one chunk, starting from
  the carry the previous chunk ended with. The carry passes under
  ``jax.lax.stop_gradient``, so gradients flow within a chunk and never
  across its start, and memory is that of one chunk whatever the stream's
  length.

  Args:
    loss_fn: ``(params, carry, chunk) -> (loss, (new_carry, metrics))``.
    optimizer: an optax optimizer.

  Returns:
    A jit-compiled ``(state, carry, chunk) -> (state, carry, metrics)``.
  """

  @jax.jit
  def step(state: TrainState, carry, chunk):
    carry = jax.lax.stop_gradient(carry)
    (_, (carry, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, carry, chunk)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(state.step + 1, params, opt_state), carry, metrics

  return step


def stream_chunks(stream: jax.Array, chunk_length: int, batch_size: int):
  """Cuts a 1-D token stream into ``(batch_size, chunk_length + 1)`` chunks.

  Row ``b`` of consecutive chunks continues row ``b`` of the previous one
  (the layout truncated BPTT needs); each chunk overlaps the next by one
  token, so inputs are ``chunk[:, :-1]`` and targets ``chunk[:, 1:]``.
  """
  per_row = (len(stream) - 1) // batch_size
  n = per_row // chunk_length
  if n < 1:
    raise ValueError(f"stream: {len(stream)} tokens are too few for batch_size="
                     f"{batch_size} and chunk_length={chunk_length}")
  rows = np.asarray(stream[:batch_size * per_row + 1])
  starts = np.arange(batch_size) * per_row
  for i in range(n):
    idx = starts[:, None] + i * chunk_length + np.arange(chunk_length + 1)
    yield rows[idx]


# ------------------------------------------------------------ parallelism
def data_mesh(devices=None) -> Mesh:
  """A one-axis mesh ``("data",)`` over ``devices``: by default every device
  of every process (``jax.devices()``), so that after
  ``jax.distributed.initialize`` the mesh spans all hosts."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), ("data",))


def shard_batch(batch: PyTree, mesh: Mesh) -> PyTree:
  """The global batch, split along the leading axis over the mesh's
  ``"data"`` axis, from this process's rows.

  In one process ``batch`` is the whole batch. In a multi-process run
  (``jax.distributed``) each process passes its own rows, its slice of the
  global batch in process order, and gets the same global array back
  (``jax.make_array_from_process_local_data``).
  """
  n = local_devices(mesh)
  sharding = NamedSharding(mesh, PartitionSpec("data"))
  def put(x):
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[0] % n:
      raise ValueError(f"batch: leading axis {x.shape[:1]} must divide into this "
                       f"process's {n} devices for data parallelism")
    return jax.make_array_from_process_local_data(sharding, x)
  return jax.tree.map(put, batch)


def local_devices(mesh: Mesh) -> int:
  """How many of the mesh's devices belong to this process."""
  return sum(d.process_index == jax.process_index() for d in mesh.devices.flat)


def is_primary() -> bool:
  """Whether this process writes files and shows progress: process 0."""
  return jax.process_index() == 0


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
  """Copies every array to every device of the mesh."""
  return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


# ------------------------------------------------------------- checkpoints
class Checkpointer:
  """Orbax checkpoints of a :class:`TrainState`: every ``every`` steps and at
  the end, keeping the last ``keep``.

  Each checkpoint holds two items: ``"state"``, the train state, and
  ``"history"``, the metrics history up to that step (JSON), so that a
  resumed :func:`fit` writes the history an uninterrupted run writes.
  Checkpoints of earlier versions (the state alone) still restore. Orbax
  writes each checkpoint into a temporary directory and renames it when
  complete, so an interrupted write never replaces a good checkpoint; such
  leftovers are ignored when restoring.
  """

  ITEMS = ("state", "history")

  def __init__(self, directory, *, every: int = 100, keep: int = 3):
    import orbax.checkpoint as ocp  # only checkpointing needs orbax

    self._ocp = ocp
    self.directory = pathlib.Path(directory).absolute()
    self.every = every
    self._options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=self._options,
                                         item_names=self.ITEMS)

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def due(self, step: int, *, force: bool = False) -> bool:
    """Whether :meth:`save` at ``step`` writes a checkpoint."""
    return (force or step % self.every == 0) and step not in self.manager.all_steps()

  def save(self, state: TrainState, *, force: bool = False,
           history: Optional[dict] = None) -> bool:
    """Saves ``state`` (and ``history``, a JSON-able dict) if :meth:`due`."""
    step = int(state.step)
    if not self.due(step, force=force):
      return False
    items = {"state": self._ocp.args.StandardSave(state)}
    if history is not None:
      items["history"] = self._ocp.args.JsonSave(history)
    saved = self.manager.save(step, args=self._ocp.args.Composite(**items), force=True)
    self.manager.wait_until_finished()
    return saved

  def restore_history(self, step: Optional[int] = None) -> Optional[dict]:
    """The history saved with the checkpoint at ``step`` (default: latest),
    or ``None`` if it has none."""
    step = self.latest_step() if step is None else step
    if step is None or not (self.directory / str(step) / "history").is_dir():
      return None
    restored = self.manager.restore(
        step, args=self._ocp.args.Composite(history=self._ocp.args.JsonRestore()))
    return restored["history"]

  def _restore_state(self, step, abstract):
    if (self.directory / str(step) / "default").is_dir():  # the state alone
      legacy = self._ocp.CheckpointManager(self.directory, options=self._options)
      try:
        return legacy.restore(step, args=self._ocp.args.StandardRestore(abstract))
      finally:
        legacy.close()
    return self.manager.restore(step, args=self._ocp.args.Composite(
        state=self._ocp.args.StandardRestore(abstract)))["state"]

  def restore(self, template: TrainState, step: Optional[int] = None) -> TrainState:
    """The checkpoint at ``step`` (default: latest), shaped like ``template``.

    Raises:
      ValueError: no checkpoint, or one that does not match ``template``
        (another model, optimizer or size) or cannot be read.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise ValueError(f"checkpoint: none found in {self.directory}")
    abstract = jax.tree.map(  # restored where the template lives (its mesh)
        lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x),
                                       sharding=getattr(x, "sharding", None)), template)
    try:
      restored = self._restore_state(step, abstract)
    except Exception as e:  # noqa: BLE001 - orbax raises many types; say which file
      raise ValueError(
          f"checkpoint: step {step} in {self.directory} cannot be restored into "
          f"this train state (a different model or optimizer, or a damaged "
          f"file): {type(e).__name__}: {str(e)[:500]}") from e
    want = jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), template)
    got = jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), restored)
    if jax.tree.structure(want) != jax.tree.structure(got) or want != got:
      raise ValueError(f"checkpoint: step {step} in {self.directory} has shapes "
                       f"{got}, this train state expects {want}")
    return jax.tree.map(jnp.asarray, restored)

  def close(self):
    """Waits for pending writes and releases orbax's resources."""
    self.manager.wait_until_finished()
    self.manager.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


# -------------------------------------------------------------------- loop
class History(list):
  """Metric records ``{"step": ..., "train/loss": ..., ...}``; writes JSON, CSV
  and a PNG of the curves."""

  def write(self, directory) -> dict:
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / "metrics.json", "csv": directory / "metrics.csv"}
    paths["json"].write_text(json.dumps(list(self), indent=1))
    keys = sorted({k for r in self for k in r}, key=lambda k: (k != "step", k))
    with open(paths["csv"], "w", newline="") as f:
      writer = csv.DictWriter(f, fieldnames=keys)
      writer.writeheader()
      writer.writerows(self)
    return paths

  def plot(self, path, *, keys=None, title: str = "", logy: bool = True) -> pathlib.Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = keys or sorted({k for r in self for k in r if k.endswith("loss")})
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in keys:
      points = [(r["step"], r[key]) for r in self if key in r]
      if points:
        ax.plot(*zip(*points), label=key)
    ax.set_xlabel("step")
    if logy:
      ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def fit(train_step: Callable, state: TrainState, batch_fn: Callable[[int], PyTree], *,
        num_steps: int, eval_fn: Optional[Callable[[PyTree], Metrics]] = None,
        eval_every: int = 0, log_every: int = 50,
        checkpointer: Optional[Checkpointer] = None,
        results_dir=None, progress: bool = True, description: str = "train",
        mesh: Optional[Mesh] = None):
  """Runs ``train_step`` until ``state.step == num_steps``.

  Args:
    train_step: from :func:`make_train_step`.
    state: the initial state; replaced by the latest checkpoint if
      ``checkpointer`` has one (the run resumes where it stopped, with the
      metrics history saved in that checkpoint).
    batch_fn: ``step -> batch``. A function of the step, not an iterator, so a
      resumed run sees the same batches as an uninterrupted one.
    num_steps: total number of updates.
    eval_fn: ``params -> metrics``, run every ``eval_every`` steps and at the
      end.
    log_every: steps between records in the history (means over the steps).
    checkpointer: saves every ``checkpointer.every`` steps and at the end.
    results_dir: where ``metrics.json`` / ``metrics.csv`` are written, at
      every checkpoint and at the end.
    progress: show a tqdm bar with the running loss.
    mesh: run data-parallel over this mesh; by default every visible device
      when there are several and the batch divides evenly among them.

  Several processes (``jax.distributed.initialize`` on each host, the same
  script everywhere): ``batch_fn(step)`` returns this process's rows of the
  global batch; the state is replicated over the global mesh, metrics are
  means over the global batch, every process saves and restores the same
  checkpoints (a directory all of them can reach), and only process 0 shows
  progress and writes the history.

  Returns:
    ``(state, history)``.
  """
  from tqdm.auto import tqdm  # only the loop needs tqdm

  history, running = History(), []
  if mesh is None and len(jax.devices()) > 1:
    mesh = data_mesh()
  if mesh is not None:
    state = replicate(state, mesh)
  if checkpointer is not None and checkpointer.latest_step() is not None:
    state = checkpointer.restore(state)
    saved = checkpointer.restore_history()
    if saved is not None:  # the records so far, and the open log window
      history, running = History(saved["records"]), saved["pending"]
  multiprocess = jax.process_count() > 1

  def place(batch):
    if mesh is None:
      return batch
    leading = {jnp.shape(x)[0] for x in jax.tree.leaves(batch) if jnp.ndim(x)}
    if multiprocess or all(n % mesh.shape["data"] == 0 for n in leading):
      return shard_batch(batch, mesh)  # each process's rows, one global batch
    return batch
  write = results_dir is not None and is_primary()

  start = int(state.step)
  bar = tqdm(total=num_steps, initial=start, desc=description,
             disable=not progress or not is_primary(),
             dynamic_ncols=True, file=os.sys.stderr)
  for step in range(start, num_steps):
    state, metrics = train_step(state, place(batch_fn(step)))
    running.append(metrics)
    done = step + 1
    if done % log_every == 0 or done == num_steps:
      record = {"step": done}
      for key in running[0]:
        record[f"train/{key}"] = float(np.mean([float(m[key]) for m in running]))
      running = []
      if eval_fn is not None and ((eval_every and done % eval_every == 0) or done == num_steps):
        record.update({f"eval/{k}": float(v) for k, v in eval_fn(state.params).items()})
      history.append(record)
      bar.set_postfix({k.split("/")[-1] if k.startswith("train") else k: f"{v:.4g}"
                       for k, v in record.items() if k != "step" and "grad_norm" not in k})
    if checkpointer is not None and checkpointer.due(done, force=done == num_steps):
      running = [{k: float(v) for k, v in m.items()} for m in running]
      checkpointer.save(state, force=True, history={"records": list(history),
                                                    "pending": running})
      if write and history:
        history.write(results_dir)
    bar.update(1)
  bar.close()
  if write and history:
    history.write(results_dir)
  return state, history
