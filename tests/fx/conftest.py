"""The FX tests' fixture: a fresh MSP (builders are in ``factories``)."""

from __future__ import annotations

import pytest

from billbyte.runtime import Runtime
from tests.fx.factories import Msp, new_msp


@pytest.fixture
def msp(runtime: Runtime) -> Msp:
    return new_msp(runtime)
