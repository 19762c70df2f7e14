"""Residual blocks as the papers build them, and a sequence model of them.

Each block runs one step, ``block(params, carry, x) -> (carry, y)``, or a
sequence, ``jaxrnn.scan(block, params, xs, ...)`` (lengths, masks, resets);
both forms compute the same numbers.
"""

from jaxrnn._src.blocks.base import Block
from jaxrnn._src.blocks.base import BlockState
from jaxrnn._src.blocks.conv import CausalConv
from jaxrnn._src.blocks.conv import ConvParams
from jaxrnn._src.blocks.griffin import GriffinBlock
from jaxrnn._src.blocks.griffin import GriffinParams
from jaxrnn._src.blocks.mamba import MambaBlock
from jaxrnn._src.blocks.mamba import MambaParams
from jaxrnn._src.blocks.mlp import MLP
from jaxrnn._src.blocks.mlp import MLPParams
from jaxrnn._src.blocks.model import ModelParams
from jaxrnn._src.blocks.model import SequenceModel
from jaxrnn._src.blocks.norms import Norm
from jaxrnn._src.blocks.norms import NormParams
from jaxrnn._src.blocks.residual import PreNormBlock
from jaxrnn._src.blocks.residual import PreNormParams
from jaxrnn._src.blocks.xlstm import MLSTMBlock
from jaxrnn._src.blocks.xlstm import MLSTMBlockParams
from jaxrnn._src.blocks.xlstm import SLSTMBlock
from jaxrnn._src.blocks.xlstm import SLSTMBlockParams

__all__ = (
    "Block",
    "BlockState",
    "CausalConv",
    "ConvParams",
    "GriffinBlock",
    "GriffinParams",
    "MLP",
    "MLPParams",
    "MLSTMBlock",
    "MLSTMBlockParams",
    "MambaBlock",
    "MambaParams",
    "ModelParams",
    "Norm",
    "NormParams",
    "PreNormBlock",
    "PreNormParams",
    "SLSTMBlock",
    "SLSTMBlockParams",
    "SequenceModel",
)
