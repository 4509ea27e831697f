"""One-line user-facing errors (the CLI prints the message and exits 2, as factorgen's CLI does)."""

import os
import sys
from typing import Callable, TypeVar

A = TypeVar("A")


class UserError(Exception):
    """A problem with the user's input (a file, a flag): its message is one line naming the file or flag and the cause."""


def read_input_bytes(path: str, missing: str) -> bytes:
    """The whole of input file ``path``; a missing file is ``UserError("<path>: <missing>")``, another OS error names its cause."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: {missing}") from None
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}") from None


def run_cli(train: Callable[[A], int], args: A) -> int:
    """Runs a twin command's ``train(args)``; a UserError becomes its one line on stderr and exit status 2. Under
    torchrun, rank 0 also prints it on stdout: ``torchrun --redirects 2 --tee 1`` (what Debian's torchrun needs) shows
    stdout only."""
    try:
        return train(args)
    except UserError as e:
        print(f"factorgen_twin: {e}", file=sys.stderr)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and os.environ.get("RANK", "0") == "0":
            print(f"factorgen_twin: {e}", flush=True)
        return 2
