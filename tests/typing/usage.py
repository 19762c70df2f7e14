"""How users call jaxrnn, with the types they would write: checked by mypy
(tests/test_typing.py) against the package's own hints (it ships py.typed)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

import jaxrnn
from jaxrnn import interop, train
from jaxrnn import linen as jrl

key: jax.Array = jax.random.key(0)
xs: jax.Array = jnp.ones((4, 20, 8))

cell: jaxrnn.Cell = jaxrnn.LSTMCell()
params = cell.init(key, 8, 16)
carry = cell.initial_carry(params, (4,))
carry, y = cell(params, carry, xs[:, 0])
final, ys = jaxrnn.scan(cell, params, xs, seq_lengths=jnp.array([20, 3, 5, 1]), reverse=True,
                        remat=True, impl="auto",
                        dropout=jaxrnn.RecurrentDropout(recurrent=0.1), key=key)
engine, reason = jaxrnn.which_engine(cell, params, xs)
name: str = engine + reason

bi = jaxrnn.Bidirectional(jaxrnn.GRUCell(), merge="sum")
bi_params: jaxrnn.BidirectionalParams = bi.init(key, 8, 16)
(fwd, bwd), ys = bi(bi_params, xs, resets=jnp.zeros((4, 20), bool))

stack = jaxrnn.Stacked((jaxrnn.LSTMCell(), jaxrnn.GRUCell()), dropout_rate=0.1,
                       recurrent_dropout=jaxrnn.RecurrentDropout(zoneout=0.1))
stack_params = stack.init(key, 8, [16, 32])
carries, ys = stack(stack_params, xs, key=key, deterministic=False)

conv = jaxrnn.ConvLSTMCell(kernel_size=(3, 3))
conv_params: jaxrnn.ConvLSTMParams = conv.init(key, 1, 8)
readout = jaxrnn.Linear()
out = readout(readout.init(key, 16, 1), ys)

with jaxrnn.default_engine("autodiff"):
  pass
available: bool = jaxrnn.native_available()
status: str = jaxrnn.native_status()

module = jrl.RNN(jaxrnn.GRUCell(), hidden_size=16, dropout=jaxrnn.RecurrentDropout(input=0.1))
torch_layer = interop.TorchRNN("LSTM", 8, 16, num_layers=2, batch_first=True)
optimizer = train.make_optimizer(1e-3, clip_norm=1.0)
state: train.TrainState = train.create_train_state(params, optimizer)
