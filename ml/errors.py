"""Errors a user can fix: the CLI prints their message as one line and exits non-zero."""


class SegmartError(RuntimeError):
    """A problem with inputs, state or configuration; the message says the cause and the fix."""
