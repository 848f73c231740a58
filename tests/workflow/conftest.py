import pytest


@pytest.fixture
def workdir(tmp_path):
    """A clean working directory for one workflow invocation."""
    return tmp_path
