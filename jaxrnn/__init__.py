"""jaxrnn: functional recurrent cells for JAX.

Cells are pure functions ``cell(params, carry, x) -> (carry, y)``; params and
carries are NamedTuples; sequence layers run cells with ``jax.lax.scan``.
"""

from jaxrnn._src.cells.base import Cell
from jaxrnn._src.cells.base import LSTMState
from jaxrnn._src.cells.base import RNNState
from jaxrnn._src.cells.conv_lstm import ConvLSTMCell
from jaxrnn._src.cells.conv_lstm import ConvLSTMParams
from jaxrnn._src.layers.dropout import RecurrentDropout
from jaxrnn._src.cells.gru import GRUCell
from jaxrnn._src.cells.gru import GRUParams
from jaxrnn._src.cells.gru import MGUCell
from jaxrnn._src.cells.gru import MGUParams
from jaxrnn._src.layers.composite import Bidirectional
from jaxrnn._src.layers.composite import BidirectionalParams
from jaxrnn._src.layers.composite import Stacked
from jaxrnn._src.layers.readout import Linear
from jaxrnn._src.layers.readout import LinearParams
from jaxrnn._src.cells.layer_norm import LayerNormGRUCell
from jaxrnn._src.cells.layer_norm import LayerNormGRUParams
from jaxrnn._src.cells.layer_norm import LayerNormLSTMCell
from jaxrnn._src.cells.layer_norm import LayerNormLSTMParams
from jaxrnn._src.cells.lstm import CIFGLSTMCell
from jaxrnn._src.cells.lstm import CIFGParams
from jaxrnn._src.cells.lstm import LSTMCell
from jaxrnn._src.cells.lstm import LSTMParams
from jaxrnn._src.cells.lstm import PeepholeLSTMCell
from jaxrnn._src.cells.lstm import PeepholeLSTMParams
from jaxrnn._src.cells.lstm import ProjectedLSTMCell
from jaxrnn._src.cells.lstm import ProjectedLSTMParams
from jaxrnn._src.cells.delta_rule import DeltaNetCell
from jaxrnn._src.cells.delta_rule import DeltaNetParams
from jaxrnn._src.cells.delta_rule import GatedDeltaNetCell
from jaxrnn._src.cells.gla import GLACell
from jaxrnn._src.cells.gla import GLAParams
from jaxrnn._src.cells.lru import LRUCell
from jaxrnn._src.cells.lru import LRUParams
from jaxrnn._src.cells.lru import LRUState
from jaxrnn._src.cells.matrix_state import MatrixState
from jaxrnn._src.cells.matrix_state import MatrixStateCell
from jaxrnn._src.cells.minimal import MinGRUCell
from jaxrnn._src.cells.minimal import MinGRUParams
from jaxrnn._src.cells.minimal import MinLSTMCell
from jaxrnn._src.cells.minimal import MinLSTMParams
from jaxrnn._src.cells.mlstm import MLSTMCell
from jaxrnn._src.cells.mlstm import MLSTMParams
from jaxrnn._src.cells.mlstm import MLSTMState
from jaxrnn._src.cells.rglru import RGLRUCell
from jaxrnn._src.cells.rglru import RGLRUParams
from jaxrnn._src.layers.scan import default_engine
from jaxrnn._src.layers.scan import scan
from jaxrnn._src.layers.scan import which_engine
from jaxrnn._native import available as native_available
from jaxrnn._native import status as native_status
from jaxrnn._src.cells.selective_ssm import SelectiveSSMCell
from jaxrnn._src.cells.selective_ssm import SelectiveSSMParams
from jaxrnn._src.cells.simple import SimpleRNNCell
from jaxrnn._src.cells.slstm import SLSTMCell
from jaxrnn._src.cells.slstm import SLSTMParams
from jaxrnn._src.cells.slstm import SLSTMState
from jaxrnn._src.cells.simple import SimpleRNNParams

from jaxrnn import blocks  # noqa: E402  (no optional dependencies)

__version__ = "0.2.0"

__all__ = (
    "SelectiveSSMParams",
    "SelectiveSSMCell",
    "MLSTMState",
    "MLSTMParams",
    "MLSTMCell",
    "MatrixStateCell",
    "MatrixState",
    "GLAParams",
    "GLACell",
    "GatedDeltaNetCell",
    "DeltaNetParams",
    "DeltaNetCell",
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
