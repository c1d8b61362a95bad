"""Background jobs, recorded in the database (the source of truth).

In the embedded default a thread in ``billbyte serve`` runs them; ``billbyte jobs run``
drains them once. Pending jobs with the same key coalesce, so a burst of triggers (ten
rule edits) costs one re-rating. A job lost in a crash is still in the table: it runs again.
"""
