"""An MSP's view of its own background jobs: list them by status, read one, retry a dead
letter (the API's ``/v1/jobs`` and the console's Jobs page). The queue itself is
``billbyte.jobs``'s; this adds the tenant, the role rule and the audit trail."""
