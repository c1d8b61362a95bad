"""A real API server whose customer creation never returns: the request it is serving is
"in progress" for as long as the process lives, so a test can kill -9 it mid-request.

Run as ``python -m tests.security.blocking_server PORT MARKER`` with the BILLBYTE_*
environment pointing at the test database.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import uvicorn

from billbyte.app import create_app
from billbyte.customers import service as customers
from billbyte.runtime import build_runtime


def main(port: int, marker: Path) -> None:
    def create_that_hangs(*_args: Any, **_kwargs: Any) -> Any:
        # Touches no database session, so no lock is held while it hangs.
        marker.write_text("started")
        while True:
            time.sleep(3600)

    customers.create = create_that_hangs  # type: ignore[assignment]
    uvicorn.run(create_app(build_runtime()), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
