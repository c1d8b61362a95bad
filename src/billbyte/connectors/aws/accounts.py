"""AWS customer accounts through AWS Organizations.

* Provisioning = ``CreateAccount`` (asynchronous: polled with ``DescribeCreateAccountStatus``).
  ``CreateAccount`` has no client token, so an account with the customer's deterministic
  email is looked for first and reused.
* Suspend = attach the service control policy ``billbyte-deny-all`` (created once, denies
  every action) to the account; resume = detach it; purge = ``CloseAccount``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions as bce

from billbyte.connectors.aws.clients import calling, error_code, organizations, paginate
from billbyte.connectors.base import (
    ActionResult,
    CustomerSpec,
    PartnerContext,
    ProvisionResult,
    VendorError,
)

KIND = "aws_account"
SCP_NAME = "billbyte-deny-all"
SCP_TYPE = "SERVICE_CONTROL_POLICY"
DENY_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "BillByteSuspended", "Effect": "Deny", "Action": "*", "Resource": "*"}],
}
CUSTOMER_TAG = "billbyte:customer_id"
CLOSED_STATES = {"SUSPENDED", "PENDING_CLOSURE", "CLOSED"}
_ACCOUNT_ID = re.compile(r"^\d{12}$")


def account_email(spec: CustomerSpec) -> str:
    return f"aws+{spec.customer_id}@{spec.email_domain}".lower()


def account_name(spec: CustomerSpec) -> str:
    """AWS account names are printable ASCII, at most 50 characters: 'Müller AG' → 'Muller AG'."""
    ascii_name = unicodedata.normalize("NFKD", spec.name).encode("ascii", "ignore").decode()
    ascii_name = "".join(ch for ch in ascii_name if 32 <= ord(ch) < 127).strip()
    return (ascii_name or spec.external_id or spec.customer_id)[:50]


def portal_url(account_id: str) -> str:
    return f"https://{account_id}.signin.aws.amazon.com/console"


def _check_account_id(value: str) -> str:
    if not _ACCOUNT_ID.match(value or ""):
        raise VendorError(f"{value!r} is not an AWS account id (12 digits).", retryable=False)
    return value


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return str(value) if value is not None else None


class AwsAccounts:
    """The connector's provisioning and service management (no state of its own)."""

    # -- provisioning --

    def provision_customer(
        self, ctx: PartnerContext, spec: CustomerSpec, idempotency_key: str
    ) -> ProvisionResult:
        org = organizations(ctx)
        email = account_email(spec)
        with calling("organizations:ListAccounts"):
            existing = [
                a
                for a in paginate(org, "list_accounts", "Accounts")
                if str(a.get("Email", "")).lower() == email
            ]
        if existing:
            account = existing[0]
            if _is_closed(account):
                return ProvisionResult(
                    state="failed",
                    vendor_identifier=account["Id"],
                    kind=KIND,
                    message=f"The AWS account {account['Id']} for {email} is closed.",
                )
            return self._active(account, reused=True)
        with calling("organizations:CreateAccount"):
            answer = org.create_account(
                Email=email,
                AccountName=account_name(spec),
                IamUserAccessToBilling="ALLOW",
                Tags=[{"Key": CUSTOMER_TAG, "Value": spec.customer_id}],
            )
        status = answer["CreateAccountStatus"]
        if status.get("State") == "FAILED":
            return _failed(status)
        # CreateAccount is asynchronous on AWS (IN_PROGRESS): always poll, even when a
        # sandbox answers SUCCEEDED at once.
        return ProvisionResult(
            state="pending",
            reference=status["Id"],
            kind=KIND,
            message="AWS is creating the account.",
            extra={"email": email},
        )

    def poll_provisioning(self, ctx: PartnerContext, reference: str) -> ProvisionResult:
        org = organizations(ctx)
        with calling("organizations:DescribeCreateAccountStatus"):
            status = org.describe_create_account_status(CreateAccountRequestId=reference)[
                "CreateAccountStatus"
            ]
        state = status.get("State")
        if state == "IN_PROGRESS":
            return ProvisionResult(
                state="pending", reference=reference, kind=KIND, message="AWS is creating it."
            )
        if state == "FAILED":
            return _failed(status)
        with calling("organizations:DescribeAccount"):
            account = org.describe_account(AccountId=status["AccountId"])["Account"]
        return self._active(account, reused=False, reference=reference)

    @staticmethod
    def _active(
        account: dict[str, Any], *, reused: bool, reference: str | None = None
    ) -> ProvisionResult:
        account_id = str(account["Id"])
        return ProvisionResult(
            state="active",
            vendor_identifier=account_id,
            kind=KIND,
            portal_url=portal_url(account_id),
            reference=reference,
            message="existing AWS account reused" if reused else "AWS account created",
            extra={"email": account.get("Email"), "name": account.get("Name")},
        )

    def list_accounts(self, ctx: PartnerContext) -> list[dict[str, Any]]:
        org = organizations(ctx)
        with calling("organizations:DescribeOrganization"):
            management = org.describe_organization()["Organization"].get("MasterAccountId")
        with calling("organizations:ListAccounts"):
            accounts = list(paginate(org, "list_accounts", "Accounts"))
        return [
            {
                "vendor_identifier": a["Id"],
                "kind": KIND,
                "name": a.get("Name"),
                "email": a.get("Email"),
                "status": "closed" if _is_closed(a) else "active",
                "management": a["Id"] == management,
                "joined_at": _iso(a.get("JoinedTimestamp")),
                "portal_url": portal_url(a["Id"]),
            }
            for a in accounts
        ]

    # -- service management --

    def suspend(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        account_id = _check_account_id(vendor_identifier)
        org = organizations(ctx)
        self._refuse_management(org, account_id, "suspend")
        policy_id = self._deny_all_policy(org, create=True)
        assert policy_id is not None
        self._enable_scps(org)
        try:
            with calling("organizations:AttachPolicy"):
                org.attach_policy(PolicyId=policy_id, TargetId=account_id)
        except VendorError as exc:
            if not isinstance(exc.__cause__, bce.ClientError) or (
                error_code(exc.__cause__) != "DuplicatePolicyAttachmentException"
            ):
                raise
        return ActionResult(state="suspended", message=f"{SCP_NAME} attached to {account_id}")

    def resume(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        account_id = _check_account_id(vendor_identifier)
        org = organizations(ctx)
        policy_id = self._deny_all_policy(org, create=False)
        if policy_id is None:
            return ActionResult(state="active", message=f"no {SCP_NAME} policy exists")
        try:
            with calling("organizations:DetachPolicy"):
                org.detach_policy(PolicyId=policy_id, TargetId=account_id)
        except VendorError as exc:
            if not isinstance(exc.__cause__, bce.ClientError) or (
                error_code(exc.__cause__) != "PolicyNotAttachedException"
            ):
                raise
        return ActionResult(state="active", message=f"{SCP_NAME} detached from {account_id}")

    def purge(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        account_id = _check_account_id(vendor_identifier)
        org = organizations(ctx)
        self._refuse_management(org, account_id, "close")
        try:
            with calling("organizations:CloseAccount"):
                org.close_account(AccountId=account_id)
        except VendorError as exc:
            if not isinstance(exc.__cause__, bce.ClientError) or (
                error_code(exc.__cause__) != "AccountAlreadyClosedException"
            ):
                raise
        return ActionResult(
            state="purged",
            message=f"AWS account {account_id} closed (AWS keeps it SUSPENDED for 90 days)",
        )

    def status(self, ctx: PartnerContext, vendor_identifier: str) -> str:
        account_id = _check_account_id(vendor_identifier)
        org = organizations(ctx)
        with calling("organizations:DescribeAccount"):
            account = org.describe_account(AccountId=account_id)["Account"]
        if _is_closed(account):
            return "closed"
        with calling("organizations:ListPoliciesForTarget"):
            policies = paginate(
                org, "list_policies_for_target", "Policies", TargetId=account_id, Filter=SCP_TYPE
            )
            if any(p.get("Name") == SCP_NAME for p in policies):
                return "suspended"
        return "active"

    @staticmethod
    def _refuse_management(org: Any, account_id: str, action: str) -> None:
        with calling("organizations:DescribeOrganization"):
            management = org.describe_organization()["Organization"].get("MasterAccountId")
        if account_id == management:
            raise VendorError(
                f"Refusing to {action} {account_id}: it is the organization's management "
                "(payer) account.",
                retryable=False,
            )

    @staticmethod
    def _deny_all_policy(org: Any, *, create: bool) -> str | None:
        def find() -> str | None:
            with calling("organizations:ListPolicies"):
                for policy in paginate(org, "list_policies", "Policies", Filter=SCP_TYPE):
                    if policy.get("Name") == SCP_NAME:
                        return str(policy["Id"])
            return None

        found = find()
        if found or not create:
            return found
        try:
            with calling("organizations:CreatePolicy"):
                answer = org.create_policy(
                    Name=SCP_NAME,
                    Description="BillByte: suspends an account (denies every action)",
                    Type=SCP_TYPE,
                    Content=json.dumps(DENY_ALL),
                )
            return str(answer["Policy"]["PolicySummary"]["Id"])
        except VendorError as exc:
            cause = exc.__cause__
            if (
                isinstance(cause, bce.ClientError)
                and error_code(cause) == "DuplicatePolicyException"
            ):
                return find()  # created concurrently
            raise

    @staticmethod
    def _enable_scps(org: Any) -> None:
        """SCPs only apply once the policy type is enabled on the organization's root."""
        with calling("organizations:ListRoots"):
            roots = list(paginate(org, "list_roots", "Roots"))
        for root in roots:
            types = {t.get("Type"): t.get("Status") for t in root.get("PolicyTypes", [])}
            status = types.get(SCP_TYPE)
            if status == "ENABLED":
                continue
            if status == "PENDING_ENABLE":
                raise VendorError(
                    "Service control policies are being enabled on the organization.",
                    retryable=True,
                )
            try:
                with calling("organizations:EnablePolicyType"):
                    org.enable_policy_type(RootId=root["Id"], PolicyType=SCP_TYPE)
            except VendorError as exc:
                cause = exc.__cause__
                if not isinstance(cause, bce.ClientError) or (
                    error_code(cause) != "PolicyTypeAlreadyEnabledException"
                ):
                    raise


def _is_closed(account: dict[str, Any]) -> bool:
    return account.get("Status") in CLOSED_STATES or account.get("State") in CLOSED_STATES


def _failed(status: dict[str, Any]) -> ProvisionResult:
    reason = str(status.get("FailureReason") or "UNKNOWN")
    message = f"AWS could not create the account: {reason}."
    if reason == "EMAIL_ALREADY_EXISTS":
        message += (
            " An account with this email exists or is being created; provisioning again "
            "finds it by its email and reuses it."
        )
    return ProvisionResult(
        state="failed",
        kind=KIND,
        reference=status.get("Id"),
        message=message,
        extra={"failure_reason": reason, "reprovision": reason == "EMAIL_ALREADY_EXISTS"},
    )
