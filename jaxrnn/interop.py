"""Moving recurrent models between jaxrnn and PyTorch, Keras, Flax and Equinox.

Reading imports none of them; ``to_equinox`` imports Equinox and
``to_keras`` Keras.
"""

from jaxrnn._src.interop.equinox import from_equinox
from jaxrnn._src.interop.equinox import to_equinox
from jaxrnn._src.interop.flax import from_flax
from jaxrnn._src.interop.flax import from_flax_carry
from jaxrnn._src.interop.flax import to_flax
from jaxrnn._src.interop.flax import to_flax_carry
from jaxrnn._src.interop.keras import KerasLayer
from jaxrnn._src.interop.keras import KerasRNN
from jaxrnn._src.interop.keras import from_keras
from jaxrnn._src.interop.keras import to_keras
from jaxrnn._src.interop.torch import TorchRNN
from jaxrnn._src.interop.torch import from_torch
from jaxrnn._src.interop.torch import from_torch_cell

__all__ = (
    "KerasLayer",
    "KerasRNN",
    "TorchRNN",
    "from_equinox",
    "from_flax",
    "from_flax_carry",
    "from_keras",
    "from_torch",
    "from_torch_cell",
    "to_equinox",
    "to_flax",
    "to_flax_carry",
    "to_keras",
)
