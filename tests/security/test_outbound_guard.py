"""Issue #9, findings 2 and 7: requests to URLs an MSP controls (billbyte.kit.outbound).

2. Partner account endpoints (``endpoint_url``, ``credentials.login_url``...) accepted loopback
   and private addresses, the server called them and showed the whole answer in
   ``last_error``; an AWS account with its own endpoint got requests signed with the
   platform's AWS identity.
7. Webhook delivery resolved the host twice (check, then connect): DNS rebinding reached
   loopback.

Every internal service here is a real listener on 127.0.0.1 that records what reaches it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from billbyte.connectors import service as connectors
from billbyte.connectors.aws import clients as aws_clients
from billbyte.connectors.base import VendorError
from billbyte.kit import outbound
from billbyte.runtime import Runtime
from billbyte.webhooks import service as webhooks
from billbyte.webhooks import worker
from tests.conftest import Tenant
from tests.webhooks.conftest import T0

PARTNERS = "/v1/partner-accounts"
SECRET_BODY = "INTERNAL-ADMIN-SECRET"
PUBLIC = "93.184.216.34"  # a public address; nothing here ever connects to it


@dataclass
class Listener:
    """An internal service: records every request, answers ``status`` / ``body`` / ``headers``."""

    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def listener() -> Iterator[Listener]:
    state = Listener(port=0)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            state.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": self.rfile.read(length) if length else b"",
                }
            )
            self.send_response(state.status)
            for name, value in state.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def production(runtime: Runtime, **overrides: Any) -> None:
    """The multi-tenant defaults (the test runtime allows the local simulators)."""
    settings = runtime.settings
    settings.outbound_allow_private = False
    settings.outbound_allow_http = False
    settings.outbound_allowed_ports = "443,8443"
    settings.allow_custom_vendor_endpoints = False
    for name, value in overrides.items():
        setattr(settings, name, value)


def azure_account(tenant: Tenant, **extra: Any) -> Any:
    body = {"vendor": "azure", "display_name": "csp", **extra}
    return tenant.post(PARTNERS, json=body)


def refused_field(response: Any) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return str(response.json()["errors"][0]["field"])


# --- finding 2: every textual form of a non-public destination, at registration ------------

NON_PUBLIC = [
    "http://127.0.0.1:8080/internal-admin",
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",  # octal
    "http://127.1/",
    "http://127.0.0.1./",  # trailing dot
    "http://0/",
    "http://0.0.0.0/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://admin.localhost/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://192.0.2.1/",  # documentation
    "http://240.0.0.1/",  # reserved
    "http://224.0.0.1/",  # multicast
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata service
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",  # AWS metadata over IPv6
    "http://[ff02::1]/",
]


@pytest.mark.parametrize("url", NON_PUBLIC)
def test_non_public_endpoint_urls_are_refused_at_registration(
    tenant: Tenant, runtime: Runtime, url: str
) -> None:
    # Only the address is wrong: http, any port and custom endpoints are allowed here.
    production(
        runtime,
        outbound_allow_http=True,
        outbound_allowed_ports="*",
        allow_custom_vendor_endpoints=True,
    )
    assert refused_field(azure_account(tenant, endpoint_url=url)) == "endpoint_url"
    assert refused_field(azure_account(tenant, credentials={"login_url": url})) == (
        "credentials.login_url"
    )
    gcp = {"vendor": "gcp", "display_name": "gcp", "credentials": {"billing_export_url": url}}
    assert refused_field(tenant.post(PARTNERS, json=gcp)) == "credentials.billing_export_url"
    assert tenant.get(PARTNERS).json()["data"] == []


@pytest.mark.parametrize("url", NON_PUBLIC[:12])
def test_non_public_webhook_urls_are_refused(tenant: Tenant, runtime: Runtime, url: str) -> None:
    production(runtime, outbound_allow_http=True, outbound_allowed_ports="*")
    response = tenant.post("/v1/webhook-endpoints", json={"url": url, "event_types": ["*"]})
    assert refused_field(response) == "url"
    assert response.json()["code"] == "webhook_url_not_public"


def test_scheme_and_port_allow_lists(tenant: Tenant, runtime: Runtime) -> None:
    production(runtime, allow_custom_vendor_endpoints=True)
    assert refused_field(azure_account(tenant, endpoint_url=f"http://{PUBLIC}/")) == "endpoint_url"
    port_22 = azure_account(tenant, endpoint_url=f"https://{PUBLIC}:22/")
    assert refused_field(port_22) == "endpoint_url"
    assert "port 22" in port_22.json()["detail"]
    assert azure_account(tenant, endpoint_url=f"https://{PUBLIC}:8443/").status_code == 201


def test_custom_endpoints_only_for_sandbox_accounts_or_when_the_operator_allows(
    tenant: Tenant, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    production(runtime)
    # No DNS in tests: the vendor's real host resolves to a public address here.
    monkeypatch.setattr(outbound, "resolve", lambda host, port: [PUBLIC])
    custom = f"https://{PUBLIC}/"
    assert refused_field(azure_account(tenant, endpoint_url=custom)) == "endpoint_url"
    login = azure_account(tenant, credentials={"login_url": custom})
    assert refused_field(login) == "credentials.login_url"
    assert (
        azure_account(tenant, endpoint_url="https://api.partnercenter.microsoft.com").status_code
        == 201
    )
    sandbox = azure_account(tenant, endpoint_url=custom, sandbox=True)
    assert sandbox.status_code == 201, sandbox.text
    # Turning sandbox off keeps the custom endpoint: refused, the account stays a sandbox.
    url = f"{PARTNERS}/{sandbox.json()['id']}"
    assert refused_field(tenant.patch(url, json={"sandbox": False})) == "endpoint_url"
    assert tenant.get(url).json()["sandbox"] is True
    runtime.settings.allow_custom_vendor_endpoints = True
    assert azure_account(tenant, endpoint_url=custom).status_code == 201


# --- finding 2: at connect time, and what the MSP gets to see --------------------------------


def test_a_stored_internal_endpoint_is_not_called_and_its_answer_not_shown(
    tenant: Tenant, runtime: Runtime, listener: Listener
) -> None:
    listener.status, listener.body = 400, json.dumps({"description": SECRET_BODY}).encode()
    # Registered while the operator allowed local endpoints; later the installation is not.
    created = azure_account(tenant, endpoint_url=f"{listener.url}/internal-admin", sandbox=True)
    assert created.status_code == 201
    production(runtime, outbound_allow_http=True, outbound_allowed_ports="*")
    with pytest.raises(VendorError) as refused:
        connectors.collect(runtime, created.json()["id"])
    assert not refused.value.retryable
    assert listener.requests == []
    sync = tenant.get(f"{PARTNERS}/{created.json()['id']}/sync").json()
    assert "not a public address" in sync["last_error"]
    assert SECRET_BODY not in sync["last_error"]


def test_vendor_answers_shown_to_the_msp_are_one_short_line(
    tenant: Tenant, runtime: Runtime, listener: Listener
) -> None:
    secret = f"{SECRET_BODY}\n\x1b[31mline two\r\n" + "x" * 20_000
    listener.status, listener.body = 400, json.dumps({"error_description": secret}).encode()
    created = azure_account(tenant, endpoint_url=listener.url, sandbox=True)
    assert created.status_code == 201
    with pytest.raises(VendorError):
        connectors.collect(runtime, created.json()["id"])
    assert listener.requests, "the (allowed) simulator endpoint was called"
    last_error = tenant.get(f"{PARTNERS}/{created.json()['id']}/sync").json()["last_error"]
    assert "HTTP 400" in last_error
    assert len(last_error) <= 400
    assert "x" * 300 not in last_error
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in last_error), last_error


# --- finding 2: the platform's AWS identity never goes to an MSP's endpoint -------------------

PLATFORM_KEY_ID = "AKIAPLATFORMIDENTITY"
PLATFORM_TOKEN = "platform-session-token"


@pytest.fixture
def platform_aws_identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's own AWS identity, as boto3's default chain finds it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", PLATFORM_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "platform-secret-access-key")
    monkeypatch.setenv("AWS_SESSION_TOKEN", PLATFORM_TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    aws_clients.forget()
    yield
    aws_clients.forget()


def aws_account(tenant: Tenant, listener: Listener, **credentials: Any) -> str:
    response = tenant.post(
        PARTNERS,
        json={
            "vendor": "aws",
            "display_name": "payer",
            "endpoint_url": listener.url,
            "credentials": {"cur_bucket": "billbyte-cur", **credentials},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_custom_aws_endpoint_never_receives_the_platform_identity(
    tenant: Tenant, runtime: Runtime, listener: Listener, platform_aws_identity: None
) -> None:
    # The operator allows custom endpoints (and this local one): the MSP's role is assumed...
    runtime.settings.allow_custom_vendor_endpoints = True
    listener.status = 500
    account = aws_account(tenant, listener, role_arn="arn:aws:iam::123456789012:role/msp")
    with pytest.raises(VendorError) as refused:
        connectors.collect(runtime, account)
    seen = json.dumps([{**r, "body": r["body"].decode("latin-1")} for r in listener.requests])
    assert PLATFORM_KEY_ID not in seen and PLATFORM_TOKEN not in seen
    assert "own access_key_id" in refused.value.message


def test_a_custom_aws_endpoint_gets_only_the_accounts_own_credentials(
    tenant: Tenant, runtime: Runtime, listener: Listener, platform_aws_identity: None
) -> None:
    runtime.settings.allow_custom_vendor_endpoints = True
    listener.status = 500
    account = aws_account(
        tenant,
        listener,
        access_key_id="AKIAMSPOWNKEY0000000",
        secret_access_key="msp-own-secret",
        role_arn="arn:aws:iam::123456789012:role/msp",
    )
    with pytest.raises(VendorError):
        connectors.collect(runtime, account)
    assert listener.requests, "the request went to the MSP's endpoint (through the guard)"
    authorization = listener.requests[0]["headers"]["authorization"]
    assert "Credential=AKIAMSPOWNKEY0000000/" in authorization
    seen = json.dumps([{**r, "body": r["body"].decode("latin-1")} for r in listener.requests])
    assert PLATFORM_KEY_ID not in seen and PLATFORM_TOKEN not in seen


# --- finding 7: DNS rebinding -----------------------------------------------------------------


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """``rebind.example`` answers a public address twice, then 127.0.0.1 (what an attacker's
    name server does with a zero TTL). Connections to the public address are refused
    locally, so nothing leaves the machine; returns the addresses connected to."""
    real_getaddrinfo = socket.getaddrinfo
    real_create_connection = socket.create_connection
    answers = iter([PUBLIC, PUBLIC])
    connected: list[tuple[str, int]] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example":
            address = next(answers, "127.0.0.1")
            return real_getaddrinfo(address, port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        connected.append((address[0], address[1]))
        if address[0] == PUBLIC:
            raise ConnectionRefusedError("the test's stand-in for a public host")
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return connected


def test_dns_rebinding_cannot_reach_loopback_through_a_webhook(
    tenant: Tenant, runtime: Runtime, listener: Listener, rebinding_dns: list[tuple[str, int]]
) -> None:
    production(runtime, outbound_allow_http=True, outbound_allowed_ports="*")
    url = f"http://rebind.example:{listener.port}/hook"
    created = tenant.post("/v1/webhook-endpoints", json={"url": url, "event_types": ["*"]})
    assert created.status_code == 201, created.text  # the name was public when registered
    with runtime.uow() as uow:
        webhooks.emit(uow.session, tenant.msp_id, "test.ping", {"n": 1}, now=T0)
        uow.commit()
    assert worker.deliver_due(runtime, now=T0) == 1
    assert listener.requests == []
    assert ("127.0.0.1", listener.port) not in rebinding_dns
    assert (PUBLIC, listener.port) in rebinding_dns  # pinned to the address that was checked


def test_each_connection_resolves_once_and_connects_to_the_checked_address(
    monkeypatch: pytest.MonkeyPatch, listener: Listener
) -> None:
    lookups: list[str] = []
    answers = iter(["127.0.0.1"])

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return [next(answers, PUBLIC)]

    monkeypatch.setattr(outbound, "resolve", resolve)
    policy = outbound.OutboundPolicy(allow_http=True, allowed_ports=None)
    with outbound.guarded_client(policy) as client, pytest.raises(outbound.OutboundRefused):
        client.get(f"http://internal.example:{listener.port}/")
    assert lookups == ["internal.example"]
    assert listener.requests == []


# --- redirects ----------------------------------------------------------------------------


def test_redirects_are_not_followed(tenant: Tenant, runtime: Runtime, listener: Listener) -> None:
    """A guard-rail rather than a reproduction: the clients already did not follow
    redirects; the guarded client refuses to even when asked to."""
    listener.status, listener.headers = 302, {"Location": f"{listener.url}/internal-admin"}
    policy = outbound.LOCAL_SANDBOXES
    with outbound.guarded_client(policy, follow_redirects=True) as client:
        assert client.get(f"{listener.url}/start").status_code == 302
    assert [r["path"] for r in listener.requests] == ["/start"]

    created = tenant.post(
        "/v1/webhook-endpoints", json={"url": f"{listener.url}/hook", "event_types": ["*"]}
    )
    assert created.status_code == 201
    with runtime.uow() as uow:
        webhooks.emit(uow.session, tenant.msp_id, "test.ping", {"n": 1}, now=T0)
        uow.commit()
    assert worker.deliver_due(runtime, now=T0) == 1
    assert [r["path"] for r in listener.requests] == ["/start", "/hook"]


def test_the_older_webhook_setting_name_still_allows_private_destinations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from billbyte.settings import Settings

    for name in ("BILLBYTE_WEBHOOK_ALLOW_PRIVATE", "BILLBYTE_OUTBOUND_ALLOW_PRIVATE"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().outbound_allow_private is False
    monkeypatch.setenv("BILLBYTE_WEBHOOK_ALLOW_PRIVATE", "1")
    assert Settings().outbound_allow_private is True
    monkeypatch.delenv("BILLBYTE_WEBHOOK_ALLOW_PRIVATE")
    monkeypatch.setenv("BILLBYTE_OUTBOUND_ALLOW_PRIVATE", "1")
    assert Settings().webhook_allow_private is True
