"""One-line user-facing errors (the CLI prints the message and exits 2, as factorgen's CLI does)."""


class UserError(Exception):
    """A problem with the user's input (a file, a flag): its message is one line naming the file or flag and the cause."""
