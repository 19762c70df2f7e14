"""Every cell configuration, paired with its NumPy reference."""

import functools

import jaxrnn
import reference

CELLS = {
    "rnn_tanh": (jaxrnn.SimpleRNNCell("tanh"),
                 functools.partial(reference.simple_rnn, activation="tanh")),
    "rnn_relu": (jaxrnn.SimpleRNNCell("relu"),
                 functools.partial(reference.simple_rnn, activation="relu")),
    "lstm": (jaxrnn.LSTMCell(), reference.lstm),
    "peephole": (jaxrnn.PeepholeLSTMCell(), reference.peephole_lstm),
    "cifg": (jaxrnn.CIFGLSTMCell(), reference.cifg_lstm),
    "gru_after": (jaxrnn.GRUCell(reset_after=True),
                  functools.partial(reference.gru, reset_after=True)),
    "gru_before": (jaxrnn.GRUCell(reset_after=False),
                   functools.partial(reference.gru, reset_after=False)),
    "lstmp": (jaxrnn.ProjectedLSTMCell(), reference.projected_lstm),
}


def init_params(cell, key, input_size, hidden_size, **kwargs):
  """``cell.init``, adding a ``proj_size`` (hidden_size // 2) where needed."""
  if isinstance(cell, jaxrnn.ProjectedLSTMCell):
    kwargs.setdefault("proj_size", max(1, hidden_size // 2))
  return cell.init(key, input_size, hidden_size, **kwargs)
