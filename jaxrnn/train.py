"""Training jaxrnn models with optax (imports optax; orbax, tqdm and
matplotlib only where checkpoints, progress and plots are used)."""

from jaxrnn._src.train.training import Checkpointer
from jaxrnn._src.train.training import History
from jaxrnn._src.train.training import TrainState
from jaxrnn._src.train.training import classification_loss
from jaxrnn._src.train.training import create_train_state
from jaxrnn._src.train.training import data_mesh
from jaxrnn._src.train.training import fit
from jaxrnn._src.train.training import language_model_loss
from jaxrnn._src.train.training import make_eval_step
from jaxrnn._src.train.training import make_optimizer
from jaxrnn._src.train.training import make_tbptt_train_step
from jaxrnn._src.train.training import make_train_step
from jaxrnn._src.train.training import regression_loss
from jaxrnn._src.train.training import replicate
from jaxrnn._src.train.training import shard_batch
from jaxrnn._src.train.training import stream_chunks

__all__ = (
    "Checkpointer",
    "History",
    "TrainState",
    "classification_loss",
    "create_train_state",
    "data_mesh",
    "fit",
    "language_model_loss",
    "make_eval_step",
    "make_optimizer",
    "make_tbptt_train_step",
    "make_train_step",
    "regression_loss",
    "replicate",
    "shard_batch",
    "stream_chunks",
)
