"""Moving recurrent models between jaxrnn and PyTorch, Flax and Equinox.

None of these functions imports torch or Flax; ``to_equinox`` imports Equinox.
"""

from jaxrnn._src.equinox_interop import from_equinox
from jaxrnn._src.equinox_interop import to_equinox
from jaxrnn._src.flax_interop import from_flax
from jaxrnn._src.flax_interop import from_flax_carry
from jaxrnn._src.flax_interop import to_flax
from jaxrnn._src.flax_interop import to_flax_carry
from jaxrnn._src.torch_interop import TorchRNN
from jaxrnn._src.torch_interop import from_torch
from jaxrnn._src.torch_interop import from_torch_cell

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
