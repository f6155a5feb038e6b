"""The exception of a user mistake on the command line: :class:`CLIError`.

``fastbp.cli.main`` prints it as one line, ``fastbp: error: ...``, and exits
with status 2, never with a traceback.
"""

__all__ = ["CLIError"]


class CLIError(Exception):
    """A user mistake, reported as one line (not at all when ``quiet``: another MPI rank
    reports it)."""

    def __init__(self, message, quiet=False):
        super().__init__(message)
        self.quiet = quiet
