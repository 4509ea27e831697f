"""PyTorch twin of factorgen's generator: the same architecture, checkpoints and training recipe.

Use it with Debian's interpreter: ``PYTHONPATH=python /usr/bin/python3 -m factorgen_twin.train_generator ...``.
The safetensors and checkpoint modules need only numpy; the model modules need torch (1.13 or 2.x).
"""

__version__ = "0.1.0"
