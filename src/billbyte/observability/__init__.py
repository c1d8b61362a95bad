"""Operations' view of a running BillByte: Prometheus metrics (``/metrics``), readiness
(``/readyz``). Logs with request and job ids are ``kit/logs.py``; request measurements
``api/request_context.py``. See docs/operations.md."""
