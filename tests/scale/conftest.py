"""The scale-out test's fixtures are the suite's own: moto's S3 server (tests/usage) and the
Redis/RabbitMQ broker URLs, mandatory in CI through BILLBYTE_REQUIRE_REDIS/_RABBITMQ
(tests/jobs)."""

from tests.jobs.test_broker import broker_url  # noqa: F401  (fixture)
from tests.usage.test_object_store import s3_server  # noqa: F401  (fixture)
