"""jaxrnn: functional recurrent cells for JAX.

Cells are pure functions ``cell(params, carry, x) -> (carry, y)``; params and
carries are NamedTuples; sequence layers run cells with ``jax.lax.scan``.
"""

from jaxrnn._src.base import Cell
from jaxrnn._src.base import LSTMState
from jaxrnn._src.base import RNNState
from jaxrnn._src.conv_lstm import ConvLSTMCell
from jaxrnn._src.conv_lstm import ConvLSTMParams
from jaxrnn._src.dropout import RecurrentDropout
from jaxrnn._src.gru import GRUCell
from jaxrnn._src.gru import GRUParams
from jaxrnn._src.gru import MGUCell
from jaxrnn._src.gru import MGUParams
from jaxrnn._src.layers import Bidirectional
from jaxrnn._src.layers import BidirectionalParams
from jaxrnn._src.layers import Stacked
from jaxrnn._src.linear import Linear
from jaxrnn._src.linear import LinearParams
from jaxrnn._src.layer_norm import LayerNormGRUCell
from jaxrnn._src.layer_norm import LayerNormGRUParams
from jaxrnn._src.layer_norm import LayerNormLSTMCell
from jaxrnn._src.layer_norm import LayerNormLSTMParams
from jaxrnn._src.lstm import CIFGLSTMCell
from jaxrnn._src.lstm import CIFGParams
from jaxrnn._src.lstm import LSTMCell
from jaxrnn._src.lstm import LSTMParams
from jaxrnn._src.lstm import PeepholeLSTMCell
from jaxrnn._src.lstm import PeepholeLSTMParams
from jaxrnn._src.lstm import ProjectedLSTMCell
from jaxrnn._src.lstm import ProjectedLSTMParams
from jaxrnn._src.lru import LRUCell
from jaxrnn._src.lru import LRUParams
from jaxrnn._src.lru import LRUState
from jaxrnn._src.minimal import MinGRUCell
from jaxrnn._src.minimal import MinGRUParams
from jaxrnn._src.minimal import MinLSTMCell
from jaxrnn._src.minimal import MinLSTMParams
from jaxrnn._src.rglru import RGLRUCell
from jaxrnn._src.rglru import RGLRUParams
from jaxrnn._src.scan import default_engine
from jaxrnn._src.scan import scan
from jaxrnn._src.scan import which_engine
from jaxrnn._native import available as native_available
from jaxrnn._native import status as native_status
from jaxrnn._src.simple import SimpleRNNCell
from jaxrnn._src.slstm import SLSTMCell
from jaxrnn._src.slstm import SLSTMParams
from jaxrnn._src.slstm import SLSTMState
from jaxrnn._src.simple import SimpleRNNParams

__version__ = "0.1.0"

__all__ = (
    "Bidirectional",
    "BidirectionalParams",
    "CIFGLSTMCell",
    "CIFGParams",
    "Cell",
    "ConvLSTMCell",
    "ConvLSTMParams",
    "GRUCell",
    "GRUParams",
    "LRUCell",
    "LayerNormGRUCell",
    "LayerNormGRUParams",
    "LayerNormLSTMCell",
    "LayerNormLSTMParams",
    "LRUParams",
    "LRUState",
    "LSTMCell",
    "LSTMParams",
    "LSTMState",
    "Linear",
    "LinearParams",
    "MGUCell",
    "MGUParams",
    "MinGRUCell",
    "MinGRUParams",
    "MinLSTMCell",
    "MinLSTMParams",
    "PeepholeLSTMCell",
    "PeepholeLSTMParams",
    "ProjectedLSTMCell",
    "ProjectedLSTMParams",
    "RGLRUCell",
    "RGLRUParams",
    "RNNState",
    "RecurrentDropout",
    "SLSTMCell",
    "SLSTMParams",
    "SLSTMState",
    "SimpleRNNCell",
    "SimpleRNNParams",
    "Stacked",
    "default_engine",
    "native_available",
    "native_status",
    "scan",
    "which_engine",
)
