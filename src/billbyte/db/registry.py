"""Imports every feature's ORM models so that ``Base.metadata`` is complete."""

from billbyte.audit import models as audit_models
from billbyte.customers import models as customer_models
from billbyte.idempotency import models as idempotency_models
from billbyte.partners import models as partner_models
from billbyte.tenancy import models as tenancy_models
from billbyte.usage import models as usage_models

ALL = (
    tenancy_models,
    audit_models,
    partner_models,
    customer_models,
    idempotency_models,
    usage_models,
)
