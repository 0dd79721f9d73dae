"""Both backends of `native`, so that every test runs on each of them with the same vectors."""

import pytest

from native import _native, fallback  # the extension must be built: an ImportError here fails


@pytest.fixture(params=[_native, fallback], ids=["native", "fallback"])
def backend(request):
    return request.param


BACKENDS = (_native, fallback)
