"""Names vulture cannot see being used (`make lint` runs vulture over src/billbyte with this).

Frameworks use them by name: Pydantic fields and ``model_config``, SQLAlchemy columns and
``TypeDecorator`` hooks, protocol methods, ``__exit__`` parameters, module attributes set for
their import side effects. Route, command and validator functions are skipped by
``--ignore-decorators`` in the Makefile instead of being listed here.
"""

# ruff: noqa: B018, F821

# Pydantic (response fields, configuration)
model_config
price_history  # catalog.schemas
offer_name  # catalog.schemas
current_term  # catalog.schemas
quantity_changes  # catalog.schemas
service_period  # charges.schemas, invoicing.schemas
margin_total  # charges.schemas
margin_percent  # charges.schemas
data_lag_seconds  # connectors.endpoints
vendor_states  # customers.schemas
from_currency  # fx.schemas
to_currency  # fx.schemas
source_line_keys  # invoicing.schemas
has_credentials  # partners.schemas (read from the model's property)
region_id  # pricing.models, pricing.schemas
contracted_cost  # usage.schemas
attempted_at  # webhooks.models, webhooks.schemas
last_status_code  # webhooks.models, webhooks.schemas

# SQLAlchemy (columns, TypeDecorator hooks, DBAPI attributes)
closed_at  # rating.models
deleted_at  # webhooks.models
impl
cache_ok
_.load_dialect_impl
_.process_bind_param
_.process_result_value
_.isolation_level  # db.engine: the pysqlite connection's, set to take over BEGIN

# Protocols and library hooks
exc_type  # db.uow.UnitOfWork.__exit__
tb  # db.uow.UnitOfWork.__exit__
decode_content  # connectors.aws: urllib3's read() keyword
_.readinto  # usage.limits: io.RawIOBase
_.connect_unix_socket  # kit.outbound: httpcore's NetworkBackend
args  # kit.outbound
_._pool  # kit.outbound
_.core_fonts_encoding  # invoicing.pdf: fpdf2
_.should_exit  # sandbox.partner_center: uvicorn.Server

# Imports kept for their side effect (every model, every job handler)
ALL  # billbyte.models
MODULES  # billbyte.tasks

# Left by issue 10, each checked by hand
ACTIVE  # customers.schemas.CustomerStatus: the states a customer takes, stored and compared as text
SUSPENSION_REQUESTED  # customers.schemas.CustomerStatus: the states a customer takes, stored and compared as text
SUSPENDED  # customers.schemas.CustomerStatus: the states a customer takes, stored and compared as text
PURGED  # customers.schemas.CustomerStatus: the states a customer takes, stored and compared as text
assembly_id  # issue 10: sandbox.aws simulator state, for the coordinator
report_keys  # issue 10: sandbox.aws, for the coordinator
management_account_id  # issue 10: sandbox.aws, for the coordinator
organization_id  # issue 10: sandbox.aws, for the coordinator
root_id  # issue 10: sandbox.aws, for the coordinator
_.management_account_id  # issue 10: sandbox.aws, for the coordinator
_.organization_id  # issue 10: sandbox.aws, for the coordinator
_.root_id  # issue 10: sandbox.aws, for the coordinator
_.revoke_tokens  # issue 10: sandbox simulators, for the coordinator
_.render  # issue 10: sandbox.partner_center, for the coordinator
_.throttle  # issue 10: sandbox.partner_center, for the coordinator
_.hang  # issue 10: sandbox.partner_center, for the coordinator
DEFAULT_LICENCE_OFFER  # issue 10: sandbox.partner_center, for the coordinator
_.all_items  # issue 10: sandbox.partner_center, for the coordinator
billing_period_start  # usage.manifests: a manifest's period, kept in the parsed value for readers and tests
billing_period_end  # usage.manifests: a manifest's period, kept in the parsed value for readers and tests
_.auth_flow  # httpx calls an Auth's auth_flow (connectors/_http.py)
forget  # connectors.aws.clients: tests drop the cached clients between guard settings
_.has_credentials  # partners.models: read by PartnerAccountOut (pydantic from_attributes)

# Read by Jinja2 templates (vulture does not read templates)
last_sign_in_at  # auth.models: shown in the console and the portal-users API (PortalUserOut)
logo_url  # web.branding.Brand: base.html
support_email  # web.branding.Brand: base.html
support_phone  # web.branding.Brand: base.html
support_url  # web.branding.Brand: base.html
on_colour  # web.branding.Brand: base.html
href  # web.pages.NavItem: base.html
# Issue 11: analytics.repository's queries for the cost portal's pages (built by another
# helper); until those pages call them, only tests do. Remove each once a page uses it.
period_total  # analytics.repository
daily_trend  # analytics.repository
filter_options  # analytics.repository
top_resources  # analytics.repository
cost_rows  # analytics.repository
month_comparison  # analytics.repository
previous_period  # analytics.repository.MonthComparison, read by the portal's page
previous_currency  # analytics.repository.MonthComparison, read by the portal's page
previous_full  # analytics.repository.MonthComparison, read by the portal's page
alert_id  # budgets.repository.BudgetNotice: portal/templates/budgets/list.html
budget_name  # budgets.repository.BudgetNotice: portal/templates/budgets/list.html
statuses  # portal.budgets.BudgetsPage: portal/templates/budgets/list.html

# Console page data read by the templates (console/*_views.py dataclasses)
actions  # console.customers_views.CustomerPage
portal_users  # console.customers_views.CustomerPage
invoice_blockers  # console.customers_views.CustomerPage (the customer page template)
consequence  # console.customers_views.ActionPreview
imports  # console.partners_views.UploadPage
reconciliation  # console.partners_views.ImportPage
file_lines  # console.partners_views.Reconciliation
fx_policy  # console.money_views.Money: money/index.html
credit_policy  # console.money_views.Money: money/index.html

# portal.views: page data read by the portal's templates
month_to_date  # portal.views.Overview: overview.html
dimensions  # portal.views.CostsPage: costs.html
sentences  # portal.views.CostsPage: costs.html
export_query  # portal.views.CostsPage: costs.html
trend_chart  # portal.views.CostsPage: costs.html
breakdown_chart  # portal.views.CostsPage: costs.html
drivers_chart  # portal.views.CostsPage: costs.html
alert_id  # budgets.repository.BudgetNotice: portal/templates/budgets/list.html
budget_name  # budgets.repository.BudgetNotice: portal/templates/budgets/list.html
statuses  # portal.budgets.BudgetsPage: portal/templates/budgets/list.html
previous_full  # analytics.repository.MonthComparison: the whole previous month, no page shows it yet
address_line1  # issue 12: billing profile / party / tax fields, written by the API and read by templates and JSON
address_line2  # issue 12: billing profile / party / tax fields, written by the API and read by templates and JSON
bank_name  # issue 12: billing profile / party / tax fields, written by the API and read by templates and JSON
city  # issue 12: billing profile / party / tax fields, written by the API and read by templates and JSON
exemption_reason  # issue 12: billing profile / party / tax fields, written by the API and read by templates and JSON
footer_text  # issue 12: billing profile / party / tax fields, written by the API and read by templates and JSON
invoice_email  # issue 12: billing profile / party / tax fields, written by the API and read by templates and JSON
po_number  # issue 12: billing profile / party / tax fields, written by the API and read by templates and JSON
postal_code  # issue 12: billing profile / party / tax fields, written by the API and read by templates and JSON
_publish_jobs  # billbyte.cli: the root Typer callback (@app.callback), run before every command
_publish_committed  # jobs.broker: SQLAlchemy Session "after_commit" listener (@event.listens_for)
_forget_rolled_back  # jobs.broker: SQLAlchemy Session "after_transaction_end" listener
create_time  # sandbox.aws.AwsSandbox.restore_state: moto's FakeAccount join date, read by moto
access_log  # sandbox.runtime._quiet_protocol: uvicorn's protocol attribute, read by uvicorn
_.socket_timeout  # jobs.repository.probe_broker: pika.URLParameters, read by pika
_.blocked_connection_timeout  # jobs.repository.probe_broker: pika.URLParameters, read by pika
_.connection_attempts  # jobs.repository.probe_broker: pika.URLParameters, read by pika
worker_app  # billbyte.cli: imported by name ("billbyte.cli:worker_app") in each `serve --workers N` process by uvicorn
