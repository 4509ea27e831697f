"""Generator checkpoints <-> twin modules (through names.py)."""
from typing import Dict, Optional, Tuple

import numpy as np

from .checkpoint import Checkpoint, load_checkpoint
from .generator import Generator
from .names import to_twin

EMA_PREFIX = "ema/"


def prefer_ema(tensors: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """factorgen's preferEma: every parameter with an ``ema/<name>`` average takes its values; ``ema/`` entries dropped."""
    out = {k: v for k, v in tensors.items() if not k.startswith(EMA_PREFIX)}
    for k, v in tensors.items():
        if k.startswith(EMA_PREFIX) and k[len(EMA_PREFIX):] in out:
            out[k[len(EMA_PREFIX):]] = v
    return out


def without_ema(tensors: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The raw (training) weights: the ``ema/`` entries dropped."""
    return {k: v for k, v in tensors.items() if not k.startswith(EMA_PREFIX)}


def load_generator(folder: str, ema: bool = True, ck: Optional[Checkpoint] = None) -> Tuple[Generator, Checkpoint]:
    """A twin generator from a factorgen generator checkpoint folder (either layout); ema: use the EMA weights if saved
    (as factorgen's sampling does). Raises UserError/ValueError naming the folder."""
    ck = ck or load_checkpoint(folder, "generator")
    model = Generator(ck.config)
    tensors = prefer_ema(ck.tensors) if ema else without_ema(ck.tensors)
    model.load_state_dict(to_twin(tensors, ck.config, folder))
    return model, ck
