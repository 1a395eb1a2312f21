import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def text_encoder():
    """MiniLM loaded once for the whole session (it takes a few seconds)."""
    from vidiff.text.encoders import TextEncoder

    return TextEncoder()
