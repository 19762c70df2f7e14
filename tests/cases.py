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
}
