"""A small training run for tests/test_resume.py, killed with SIGKILL where
the environment says: KILL_STEP=n (before step n's update) or KILL_WRITE=n
(inside the write of checkpoint n, after its files, before its commit)."""

import os
import signal
import sys

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn
from jaxrnn import train

run_dir = sys.argv[1]
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

cell, readout = jaxrnn.GRUCell(), jaxrnn.Linear()
params = (cell.init(jax.random.key(0), 2, 8), readout.init(jax.random.key(1), 8, 1))


def loss_fn(params, batch):
  xs, targets = batch
  carry, _ = jaxrnn.scan(cell, params[0], xs)
  return train.regression_loss(readout(params[1], carry.h)[..., 0], targets)


def batch_fn(step):
  if step == kill_step:
    os.kill(os.getpid(), signal.SIGKILL)
  xs = jax.random.uniform(jax.random.fold_in(jax.random.key(2), step), (8, 5, 2))
  return xs, xs[..., 0].mean(-1)


optimizer = train.make_optimizer(1e-2)
state = train.create_train_state(params, optimizer)
with train.Checkpointer(f"{run_dir}/checkpoints", every=3, keep=2) as checkpoints:
  state, _ = train.fit(train.make_train_step(loss_fn, optimizer), state, batch_fn,
                       num_steps=12, log_every=2, checkpointer=checkpoints,
                       progress=False, results_dir=run_dir)
np.savez(f"{run_dir}/params.npz", *jax.tree.leaves(state.params))
