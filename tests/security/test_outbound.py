"""The server's own requests (SSRF): subscription endpoints and CRD fhirServer go to public
addresses only (or the allow-list), over https, with safe headers, checked again at
delivery against DNS rebinding; CRD fetch failures all look the same."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from priorauth.auth import scopes as sc
from priorauth.demo.samples import hemgenix_request
from priorauth.service.app_service import PriorAuthService
from priorauth.service.outbound import OutboundPolicy, OutboundRefused, UnresolvableHost
from priorauth.settings import Settings
from priorauth.store.models import SubscriptionRow
from tests.api.conftest import client, clock, db_url, service  # noqa: F401
from tests.api.live import free_port
from tests.api.receiver import (
    Receiver,
    allow_loopback,
    receiver,  # noqa: F401 - the fixture
    subscription,
)
from tests.crd.ehr import order_sign
from tests.crd.test_hooks import FhirServer
from tests.security.conftest import PROVIDER_SCOPES, api, bearer, make_client, secured  # noqa: F401


class FakeDNS:
    """A resolver the test controls: host name -> addresses, changed at will (rebinding)."""

    def __init__(self, **answers: list[str]) -> None:
        self.answers = {k.replace("_", "."): v for k, v in answers.items()}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise UnresolvableHost(f"the host name {host!r} cannot be resolved")
        return list(self.answers[host])


def _npi(bundle: dict[str, Any]) -> str:
    ref = bundle["entry"][0]["resource"]["provider"]["reference"]
    org = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == ref)
    return str(org["identifier"][0]["value"])


def _post(c: TestClient, body: object, headers: dict[str, str] | None = None) -> Any:
    return c.post("/fhir/Subscription", content=orjson.dumps(body), headers=headers or {})


def _stored(svc: PriorAuthService) -> int:
    with svc.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(SubscriptionRow)) or 0)


# --- subscription endpoints ------------------------------------------------------------


def test_loopback_subscriber_never_gets_the_claim_response(
    client: TestClient,
    service: PriorAuthService,
    receiver: Receiver,
) -> None:
    """The reported attack: a loopback endpoint was accepted and sent the full bundle."""
    bundle = hemgenix_request(name="ssrf-loopback")
    r = _post(client, subscription(receiver.url, _npi(bundle)))
    assert r.status_code == 422, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert "loopback" in r.json()["issue"][0]["diagnostics"]
    cr = client.post("/fhir/Claim/$submit", content=orjson.dumps(bundle)).json()
    case_id = cr["entry"][0]["resource"]["id"]
    client.post(f"/api/cases/{case_id}/decision", json={"decision": "approve"})
    service.notifier.flush()
    assert receiver.received == []
    assert _stored(service) == 0


@pytest.mark.parametrize(
    ("endpoint", "category"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
        ("http://100.100.100.200/latest/meta-data/", "cloud metadata"),
        ("http://169.254.10.1/hook", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://10.0.0.5/hook", "private"),
        ("http://192.168.1.1/hook", "private"),
        ("http://172.16.0.1/hook", "private"),
        ("http://[fc00::1]/hook", "private"),
        ("http://127.0.0.1:{port}/hook", "loopback"),
        ("http://127.1:{port}/hook", "loopback"),  # resolves to 127.0.0.1
        ("http://2130706433:{port}/hook", "loopback"),  # 127.0.0.1 as one number
        ("http://0x7f000001:{port}/hook", "loopback"),
        ("http://[::1]:{port}/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]:{port}/hook", "loopback"),
        ("http://localhost:{port}/hook", "loopback"),
        ("http://0.0.0.0:{port}/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://240.0.0.1/hook", "private"),  # reserved (Python files it as private too)
        ("http://100.64.0.1/hook", "non-public"),  # carrier-grade NAT
    ],
)
def test_internal_endpoints_are_refused_at_subscribe_time(
    client: TestClient,
    service: PriorAuthService,
    endpoint: str,
    category: str,
) -> None:
    url = endpoint.format(port=free_port())
    r = _post(client, subscription(url, "1234567890"))
    assert r.status_code == 422, r.text
    assert f"a {category} address" in r.json()["issue"][0]["diagnostics"]
    assert r.json()["issue"][0]["expression"] == ["Subscription.channel.endpoint"]
    assert _stored(service) == 0


def test_the_allow_list_admits_a_network_and_nothing_else(
    client: TestClient,
    service: PriorAuthService,
    receiver: Receiver,
) -> None:
    allow_loopback(service)  # PRIORAUTH_OUTBOUND_ALLOW=127.0.0.1
    assert _post(client, subscription(receiver.url, "1")).status_code == 201
    for refused in ("http://169.254.169.254/", "http://10.0.0.5/", "http://[::1]/"):
        assert _post(client, subscription(refused, "1")).status_code == 422, refused


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("Host: metadata.google.internal", "may not set Host"),
        ("Connection: close", "hop-by-hop"),
        ("Transfer-Encoding: chunked", "hop-by-hop"),
        ("Upgrade: websocket", "hop-by-hop"),
        ("Proxy-Authorization: Basic eDp5", "hop-by-hop"),
        ("Content-Length: 0", "the server sets it"),
        ("X-Practice: Cliníca", "printable ASCII"),
        ("X-Nul: a\x00b", "printable ASCII"),
        ("Bad Name: x", "HTTP token"),
        ("X-Ünicode: x", "HTTP token"),
    ],
)
def test_unsafe_channel_headers_are_refused(
    client: TestClient,
    service: PriorAuthService,
    receiver: Receiver,
    header: str,
    why: str,
) -> None:
    allow_loopback(service)
    r = _post(client, subscription(receiver.url, "1", ["Authorization: Bearer t", header]))
    assert r.status_code == 422, r.text
    assert why in r.json()["issue"][0]["diagnostics"]
    assert r.json()["issue"][0]["expression"] == ["Subscription.channel.header[1]"]


def test_https_only_outside_development(
    api: TestClient,
    secured: PriorAuthService,
) -> None:
    secured.outbound = OutboundPolicy(resolver=FakeDNS(hooks_example_org=["93.184.216.34"]))
    npi = "8189991234"
    provider = make_client(secured, "ehr-ssrf", "ES384", PROVIDER_SCOPES, npi)
    h = bearer(api, provider, sc.SUBSCRIPTION)
    plain = _post(api, subscription("http://hooks.example.org/hook", npi), h)
    assert plain.status_code == 422 and "only https" in plain.text
    tls = _post(api, subscription("https://hooks.example.org/hook", npi), h)
    assert tls.status_code == 201, tls.text
    assert tls.json()["status"] == "requested"  # active only once the handshake is accepted
    local = _post(api, subscription("https://127.0.0.1:8443/hook", npi), h)
    assert local.status_code == 422 and "loopback" in local.text


def test_a_name_with_any_internal_address_is_refused(
    client: TestClient,
    service: PriorAuthService,
) -> None:
    service.outbound = OutboundPolicy(
        allow_http=True, resolver=FakeDNS(mixed_example=["93.184.216.34", "127.0.0.1"])
    )
    r = _post(client, subscription("http://mixed.example/hook", "1"))
    assert r.status_code == 422 and "loopback" in r.text


def test_dns_rebinding_is_refused_at_delivery(
    client: TestClient,
    service: PriorAuthService,
    receiver: Receiver,
) -> None:
    """Checked at subscribe time, then the name points somewhere else: checked again."""
    dns = FakeDNS(rebind_test=["127.0.0.1"])
    service.outbound = OutboundPolicy(["127.0.0.1"], allow_http=True, resolver=dns)
    bundle = hemgenix_request(name="ssrf-rebind")
    endpoint = f"http://rebind.test:{receiver.port}/hook"
    created = _post(client, subscription(endpoint, _npi(bundle)))
    assert created.status_code == 201, created.text
    service.notifier.flush()
    # The handshake went to the checked address, naming the host: the system resolver,
    # which knows nothing of rebind.test, was never asked.
    assert receiver.kinds() == ["handshake"]
    assert receiver.received[0][0]["Host"] == f"rebind.test:{receiver.port}"
    dns.answers["rebind.test"] = ["169.254.169.254"]
    cr = client.post("/fhir/Claim/$submit", content=orjson.dumps(bundle)).json()
    case_id = cr["entry"][0]["resource"]["id"]
    client.post(f"/api/cases/{case_id}/decision", json={"decision": "approve"})
    service.notifier.flush()  # after the server's own worker, which may have been first
    assert receiver.kinds() == ["handshake"]
    [row] = [r for r in service.outbox() if r["case"] == case_id]
    # Refused, and not retried: an address the policy refuses stays refused.
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "cloud metadata" in row["last_error"]


def test_policy_entries_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    dns = FakeDNS(ehr_corp_example=["10.1.2.3"], api_corp_example=["10.9.9.9"])
    policy = OutboundPolicy(["*.corp.example", "192.168.0.0/16", "[::1]"], resolver=dns)
    assert policy.check("https://ehr.corp.example/r4").addresses[0].exploded == "10.1.2.3"
    assert policy.check("https://192.168.4.5/r4").port == 443
    assert policy.check("https://[::1]:8443/x").port == 8443
    with pytest.raises(OutboundRefused, match="private"):
        policy.check("https://10.0.0.1/")
    with pytest.raises(OutboundRefused, match="credentials"):
        policy.check("https://user:pw@ehr.corp.example/")
    with pytest.raises(ValueError, match="PRIORAUTH_OUTBOUND_ALLOW"):
        OutboundPolicy(["not a host/x"])
    monkeypatch.setenv("PRIORAUTH_OUTBOUND_ALLOW", " 127.0.0.1 , ehr.local,")
    monkeypatch.setenv("PRIORAUTH_OUTBOUND_ALLOW_HTTP", "true")
    settings = Settings.from_env()
    assert settings.outbound_allow == ("127.0.0.1", "ehr.local")
    assert OutboundPolicy.from_settings(settings).check("http://127.0.0.1:1/").port == 1
    monkeypatch.setenv("PRIORAUTH_OUTBOUND_ALLOW", "10.0.0.0/33")
    with pytest.raises(ValueError, match=r"PRIORAUTH_OUTBOUND_ALLOW: '10\.0\.0\.0/33'"):
        Settings.from_env()
    no_http = OutboundPolicy.from_settings(Settings(outbound_allow=("127.0.0.1",)))
    assert (
        no_http.describe()
        == "https to public addresses, and 127.0.0.1/32 (PRIORAUTH_OUTBOUND_ALLOW)"
    )
    with pytest.raises(OutboundRefused, match="only https"):
        no_http.check("http://127.0.0.1:1/")


# --- CRD fhirServer ----------------------------------------------------------------------


@pytest.fixture
def ehr_server() -> Iterator[FhirServer]:
    _, res = order_sign("ssrf")
    server = FhirServer(res)
    yield server
    server.close()


def _hook(fhir_server: str) -> dict[str, Any]:
    body, _ = order_sign("ssrf", prefetch=False)
    body["fhirServer"] = fhir_server
    body["fhirAuthorization"] = {"access_token": "ehr-token", "token_type": "Bearer"}
    return body


def test_crd_fhir_server_on_internal_addresses_is_not_fetched(
    client: TestClient,
    ehr_server: FhirServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An open port, a closed one and the metadata service all get the same answer."""
    closed = f"http://127.0.0.1:{free_port()}/r4"
    answers = []
    for server in (ehr_server.url, closed, "http://169.254.169.254/r4", "http://10.0.0.7/r4"):
        r = client.post("/cds-services/priorauth-order-sign", content=orjson.dumps(_hook(server)))
        answers.append((r.status_code, r.json()))
    assert ehr_server.seen == []  # the loopback EHR was never contacted
    assert all(a == answers[0] for a in answers), answers
    status, outcome = answers[0]
    assert status == 412 and outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["diagnostics"] == "the prefetch could not be fetched from fhirServer"
    # The reason is in the server's log, without the patient.
    assert "loopback" in caplog.text and "cloud metadata" in caplog.text
    patient_id = _hook(ehr_server.url)["context"]["patientId"]
    assert patient_id not in caplog.text


def test_crd_fetch_failures_are_indistinguishable_on_allowed_hosts(
    client: TestClient,
    service: PriorAuthService,
    ehr_server: FhirServer,
) -> None:
    allow_loopback(service)
    closed = f"http://127.0.0.1:{free_port()}/r4"
    missing = ehr_server.url.replace("/r4", "/nothing-here")  # answers with an error page
    answers = []
    for server in (closed, missing):
        r = client.post("/cds-services/priorauth-order-sign", content=orjson.dumps(_hook(server)))
        answers.append((r.status_code, r.json()["issue"][0]["diagnostics"]))
    assert answers[0] == answers[1] == (412, "the prefetch could not be fetched from fhirServer")
    ok = client.post(
        "/cds-services/priorauth-order-sign", content=orjson.dumps(_hook(ehr_server.url))
    )
    assert ok.status_code == 200, ok.text


def _tls_server(tmp_path: Path, host: str) -> tuple[ThreadingHTTPServer, Path]:
    """An https server on 127.0.0.1 whose certificate names `host` only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, cert_file


def test_pinned_https_still_verifies_the_certificate_for_the_name(tmp_path: Path) -> None:
    """The connection goes to the checked address; TLS still checks the host's name."""
    server, ca = _tls_server(tmp_path, "hooks.test")
    port = server.server_address[1]
    dns = FakeDNS(hooks_test=["127.0.0.1"], other_test=["127.0.0.1"])
    policy = OutboundPolicy(["127.0.0.1"], resolver=dns)
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(ca))) as http:
            ok = policy.send(http, "POST", f"https://hooks.test:{port}/h", headers={}, content=b"")
            assert ok.status_code == 204
            with pytest.raises(httpx.ConnectError, match="certificate"):
                policy.send(http, "POST", f"https://other.test:{port}/h", headers={}, content=b"")
    finally:
        server.shutdown()
        server.server_close()
