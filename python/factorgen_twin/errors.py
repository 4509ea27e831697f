"""One-line user-facing errors (the CLI prints the message and exits 2, as factorgen's CLI does)."""


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
