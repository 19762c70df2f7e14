"""A small data-parallel training run for tests/test_resume.py and
tests/test_multiprocess.py: `python train_script.py RUN_DIR NPROC PID PORT`,
one process of NPROC on JAX's distributed runtime (CPU collectives over
gloo), or the whole global batch in one process when NPROC=1.

Killed with SIGKILL where the environment says: KILL_STEP=n (before step n's
update) or KILL_WRITE=n (inside the commit of checkpoint n, after its files
are written and before the rename that completes it)."""

import os
import signal
import sys

import jax

run_dir, nproc, pid, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if nproc > 1:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid)

import numpy as np  # noqa: E402

import jaxrnn  # noqa: E402
from jaxrnn import train  # noqa: E402

GLOBAL_BATCH, STEPS = 8, 12
kill_step = int(os.environ.get("KILL_STEP", -1))
kill_write = int(os.environ.get("KILL_WRITE", -1))

if kill_write >= 0:  # die while orbax commits checkpoint `kill_write`
  from orbax.checkpoint._src.path import async_path
  rename = async_path.rename

  async def dying_rename(src, dst):
    if dst.name == str(kill_write):
      os.kill(os.getpid(), signal.SIGKILL)
    return await rename(src, dst)
  async_path.rename = dying_rename

cell, readout = jaxrnn.LSTMCell(), jaxrnn.Linear()
params = (cell.init(jax.random.key(0), 2, 8), readout.init(jax.random.key(1), 8, 1))


def loss_fn(params, batch):
  xs, targets = batch
  carry, _ = jaxrnn.scan(cell, params[0], xs)
  return train.regression_loss(readout(params[1], carry.h)[..., 0], targets)


def batch_fn(step):
  """This process's rows of the global batch of `step`."""
  if step == kill_step:
    os.kill(os.getpid(), signal.SIGKILL)
  xs = np.asarray(jax.random.uniform(jax.random.fold_in(jax.random.key(2), step),
                                     (GLOBAL_BATCH, 6, 2)))
  rows = slice(pid * GLOBAL_BATCH // nproc, (pid + 1) * GLOBAL_BATCH // nproc)
  return xs[rows], xs[rows, :, 0].mean(-1)


optimizer = train.make_optimizer(1e-2)
state = train.create_train_state(params, optimizer)
with train.Checkpointer(f"{run_dir}/checkpoints", every=3, keep=2) as checkpoints:
  state, history = train.fit(train.make_train_step(loss_fn, optimizer), state, batch_fn,
                             num_steps=STEPS, log_every=2, checkpointer=checkpoints,
                             progress=False, results_dir=run_dir)
leaves = [np.asarray(jax.device_get(leaf)) for leaf in jax.tree.leaves(state.params)]
np.savez(f"{run_dir}/params{pid}.npz", *leaves)
