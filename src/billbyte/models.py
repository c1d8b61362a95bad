"""Composition root for the schema: imports every feature's ORM models so that
``Base.metadata`` is complete (Alembic's ``migrations/env.py`` and the tests use it)."""

from billbyte.analytics import models as analytics_models
from billbyte.audit import models as audit_models
from billbyte.auth import models as auth_models
from billbyte.budgets import models as budget_models
from billbyte.catalog import models as catalog_models
from billbyte.charges import models as charge_models
from billbyte.connectors import models as connector_models
from billbyte.credit import models as credit_models
from billbyte.customers import models as customer_models
from billbyte.fx import models as fx_models
from billbyte.idempotency import models as idempotency_models
from billbyte.invoicing import models as invoicing_models
from billbyte.jobs import models as job_models
from billbyte.partners import models as partner_models
from billbyte.pricing import models as pricing_models
from billbyte.taxes import models as tax_models
from billbyte.tenancy import models as tenancy_models
from billbyte.usage import models as usage_models
from billbyte.webhooks import models as webhook_models

ALL = (
    tenancy_models,
    auth_models,
    audit_models,
    partner_models,
    customer_models,
    idempotency_models,
    usage_models,
    fx_models,
    webhook_models,
    job_models,
    pricing_models,
    charge_models,
    credit_models,
    invoicing_models,
    catalog_models,
    connector_models,
    analytics_models,
    budget_models,
    tax_models,
)
