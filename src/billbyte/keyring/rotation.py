"""Re-encrypting every stored secret under the first key of the configured key ring.

Every column that holds a value sealed with ``billbyte.kit.crypto.encrypt_json`` is listed in
``ENCRYPTED_COLUMNS``; a new encrypted column must be added there, or rotating and then
removing the old key would make its values unreadable.

Runs beside live API processes: rows are read and rewritten in batches (one short
transaction each), and each rewrite is conditional on the row still holding the value that
was read, so a value written meanwhile by a request (already under the new key) is never
overwritten with a stale one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from billbyte.idempotency.models import IdempotencyRecord
from billbyte.kit.crypto import reencrypt, ring_keys
from billbyte.partners.models import PartnerAccount
from billbyte.runtime import Runtime
from billbyte.webhooks.models import WebhookEndpoint

ENCRYPTED_COLUMNS: tuple[tuple[Any, Any], ...] = (
    (PartnerAccount, PartnerAccount.credentials_encrypted),
    (WebhookEndpoint, WebhookEndpoint.secret_encrypted),
    (IdempotencyRecord, IdempotencyRecord.response_body),
)
DEFAULT_BATCH_SIZE = 500


@dataclass
class ColumnRotation:
    column: str  # "table.column"
    examined: int = 0
    rewritten: int = 0
    undecryptable: list[str] = field(default_factory=list)  # row ids

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "examined": self.examined,
            "rewritten": self.rewritten,
            "undecryptable": self.undecryptable,
        }


def rotate_secrets(runtime: Runtime, batch_size: int = DEFAULT_BATCH_SIZE) -> list[ColumnRotation]:
    """Rewrite every stored ciphertext that is not under the ring's primary key.

    Idempotent: a second run examines everything and rewrites nothing."""
    ring_keys(runtime.secret_key)  # an empty ring fails here, before any work
    return [
        _rotate_column(runtime, model, column, batch_size) for model, column in ENCRYPTED_COLUMNS
    ]


def _rotate_column(runtime: Runtime, model: Any, column: Any, batch_size: int) -> ColumnRotation:
    outcome = ColumnRotation(column=f"{model.__tablename__}.{column.key}")
    after = ""
    while True:
        with runtime.uow() as uow:
            rows = uow.session.execute(
                select(model.id, column)
                .where(model.id > after, column.is_not(None), column != "")
                .order_by(model.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return outcome
            for row_id, token in rows:
                outcome.examined += 1
                try:
                    rotated = reencrypt(runtime.secret_key, token)
                except ValueError:
                    outcome.undecryptable.append(row_id)
                    continue
                if rotated is None:
                    continue
                values: dict[str, Any] = {column.key: rotated}
                if hasattr(model, "updated_at"):
                    # A new ciphertext of the same secret is not an edit: keep updated_at
                    # (assigning the column to itself suppresses its onupdate).
                    values["updated_at"] = model.updated_at
                result = uow.session.execute(
                    update(model)
                    .where(model.id == row_id, column == token)
                    .values(values)
                    .execution_options(synchronize_session=False)
                )
                outcome.rewritten += result.rowcount  # type: ignore[attr-defined]
            uow.commit()
            after = rows[-1][0]
