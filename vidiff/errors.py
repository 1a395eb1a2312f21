"""User-facing errors: the CLI prints these as one line and exits non-zero."""


class VidiffError(Exception):
    """A mistake in what the user asked for or gave us, not a bug."""
