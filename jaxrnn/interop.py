"""Moving recurrent models between jaxrnn and PyTorch, Flax and Equinox.

None of these functions imports torch or Flax; ``to_equinox`` imports Equinox.
"""

from jaxrnn._src.interop.equinox import from_equinox
from jaxrnn._src.interop.equinox import to_equinox
from jaxrnn._src.interop.flax import from_flax
from jaxrnn._src.interop.flax import from_flax_carry
from jaxrnn._src.interop.flax import to_flax
from jaxrnn._src.interop.flax import to_flax_carry
from jaxrnn._src.interop.torch import TorchRNN
from jaxrnn._src.interop.torch import from_torch
from jaxrnn._src.interop.torch import from_torch_cell

__all__ = (
    "TorchRNN",
    "from_equinox",
    "from_flax",
    "from_flax_carry",
    "from_torch",
    "from_torch_cell",
    "to_equinox",
    "to_flax",
    "to_flax_carry",
)
