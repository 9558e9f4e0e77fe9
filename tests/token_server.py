"""A test certificate authority and a local Microsoft Entra stand-in, for identity-based storage.

`make_certificates` writes a CA and a server certificate for 127.0.0.1 (cryptography, no network).
`TokenServer` serves, over HTTPS on 127.0.0.1, the two token endpoints azure-identity calls:

- the App Service / Functions managed-identity endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`):
  `GET /msi/token?api-version=2019-08-01&resource=...[&client_id=...|&mi_res_id=...]`;
- the authority's client-credentials endpoint (`AZURE_AUTHORITY_HOST`):
  `POST /{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`.

Tokens are unsigned-in-spirit JWTs with what Azurite's `--oauth basic` checks: audience
`https://storage.azure.com`, an `https://sts.windows.net/{tenant}/` issuer, and iat/nbf/exp
(Azurite does not verify signatures). Every token request is recorded in `requests`.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
STORAGE_AUDIENCE = "https://storage.azure.com"
TOKEN_LIFETIME = 3600


@dataclass(frozen=True)
class Certificates:
    """PEM files: the CA to trust, and the server's certificate and key."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verifies the server against the test CA only."""
        return ssl.create_default_context(cafile=str(self.ca))


def make_certificates(folder: Path) -> Certificates:
    """A fresh CA and a certificate for 127.0.0.1 / localhost signed by it, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "durable_ext test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def storage_token(tenant: str, client_id: str) -> str:
    """A JWT for storage as Entra would issue it (the signature is a placeholder)."""
    now = int(time.time())
    claims = {
        "aud": STORAGE_AUDIENCE,
        "iss": f"https://sts.windows.net/{tenant}/",
        "iat": now,
        "nbf": now - 60,
        "exp": now + TOKEN_LIFETIME,
        "appid": client_id,
        "oid": client_id,
        "tid": tenant,
        "ver": "1.0",
    }
    parts = ({"alg": "RS256", "typ": "JWT"}, claims)
    encoded = [_b64url(json.dumps(part).encode()) for part in parts]
    return ".".join([*encoded, _b64url(b"test-signature")])


@dataclass(frozen=True)
class TokenRequest:
    """One request the server answered: which endpoint, its parameters and whether it issued."""

    endpoint: str  # "managed identity" or "client secret"
    parameters: Mapping[str, str]
    issued: bool


class TokenServer:
    """The two token endpoints over HTTPS on a free port of 127.0.0.1, in a thread."""

    def __init__(
        self,
        certificates: Certificates,
        *,
        tenant: str,
        identity_header: str,
        client_secrets: Mapping[str, str],
        managed_identities: Mapping[str, str],
    ) -> None:
        """`client_secrets` maps service principals' client ids to secrets;
        `managed_identities` maps user-assigned identities' resource ids to client ids."""
        self.tenant = tenant
        self.identity_header = identity_header
        self.client_secrets = dict(client_secrets)
        self.managed_identities = dict(managed_identities)
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((HOST, 0), _handler(self))
        self._server.daemon_threads = True
        self._server.socket = certificates.server_context().wrap_socket(
            self._server.socket, server_side=True
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"https://{HOST}:{self._server.server_address[1]}"

    @property
    def identity_endpoint(self) -> str:
        """IDENTITY_ENDPOINT for azure-identity's App Service managed identity."""
        return f"{self.base_url}/msi/token"

    def record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def issued(self, endpoint: str) -> list[TokenRequest]:
        with self._lock:
            return [r for r in self.requests if r.endpoint == endpoint and r.issued]

    def __enter__(self) -> TokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's naming
            url = urlsplit(self.path)
            parameters = dict(parse_qsl(url.query))
            if url.path != "/msi/token":
                self._answer(404, {"error": "not_found"})
                return
            client_id = parameters.get("client_id")
            if "mi_res_id" in parameters:
                client_id = server.managed_identities.get(parameters["mi_res_id"])
            issued = (
                self.headers.get("X-IDENTITY-HEADER") == server.identity_header
                and parameters.get("api-version") == "2019-08-01"
                and parameters.get("resource") == STORAGE_AUDIENCE
                and client_id is not None
            )
            server.record(TokenRequest("managed identity", parameters, issued))
            if not issued or client_id is None:
                self._answer(400, {"error": "invalid_request"})
                return
            self._answer(
                200,
                {
                    "access_token": storage_token(server.tenant, client_id),
                    "expires_on": str(int(time.time()) + TOKEN_LIFETIME),
                    "resource": STORAGE_AUDIENCE,
                    "token_type": "Bearer",
                    "client_id": client_id,
                },
            )

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            client_id = form.get("client_id", "")
            issued = (
                self.path == f"/{server.tenant}/oauth2/v2.0/token"
                and form.get("grant_type") == "client_credentials"
                and form.get("scope") == f"{STORAGE_AUDIENCE}/.default"
                and client_id in server.client_secrets
                and form.get("client_secret") == server.client_secrets[client_id]
            )
            shown = {k: v for k, v in form.items() if k != "client_secret"}
            server.record(TokenRequest("client secret", shown, issued))
            if not issued:
                self._answer(401, {"error": "invalid_client"})
                return
            self._answer(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": TOKEN_LIFETIME,
                    "ext_expires_in": TOKEN_LIFETIME,
                    "access_token": storage_token(server.tenant, client_id),
                },
            )

        def _answer(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
