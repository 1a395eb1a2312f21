"""Helpers for the files vidiff writes."""

import os


def usual_permissions(path):
    """Give `path` the mode a plain open() would (0666 less the umask): mkstemp and safetensors
    both write 0600, which hides models and videos from other users of a shared machine."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
