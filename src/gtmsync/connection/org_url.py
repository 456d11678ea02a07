"""The Organization URL an admin pastes in: validated, normalised, with one message per mistake.

Admins copy the URL from their browser's address bar (the seeds' *Identify Your Organization
URL*), so it often carries `/main.aspx?appid=…`; that part is stripped and the admin told so.
What is refused, each with its own message: an empty field, `http://`, a host that is not a
Dynamics 365 host (commercial `*.dynamics.com`, including `*.crm<N>.dynamics.com`, and the
sovereign clouds), the local Dataverse server outside development/demo mode, and a host that
does not resolve or does not answer on 443.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gtmsync.connection.gateway import is_loopback, local_org_allowed
from gtmsync.kit.errors import UserError
from gtmsync.settings import Settings

FIELD = "org_url"
EXAMPLE = "https://contoso.crm.dynamics.com"
# Commercial (crm, crm2…crm21, api.crm…), GCC (crm9), GCC High / DoD, China (21Vianet).
DYNAMICS_HOST_SUFFIXES = (
    ".dynamics.com",
    ".microsoftdynamics.us",
    ".appsplatform.us",
    ".dynamics.cn",
    ".microsoftdynamics.de",
)
PROBE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class OrgUrl:
    """A normalised `https://host[:port]` and what was changed to get there."""

    url: str
    notes: list[str] = field(default_factory=list)


def _error(message: str, fix: str) -> UserError:
    return UserError(message, field=FIELD, fix=fix)


def is_dynamics_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host.endswith(suffix) and host != suffix[1:] for suffix in DYNAMICS_HOST_SUFFIXES)


def normalise(raw: str, settings: Settings) -> OrgUrl:
    """Validate the shape of the URL (no network): raise `UserError` naming the mistake."""
    text = raw.strip()
    notes: list[str] = []
    if not text:
        raise _error(
            "Enter your Organization URL.",
            f"Copy it from your browser's address bar in Dynamics 365, e.g. {EXAMPLE}.",
        )
    if "://" not in text:
        text = "https://" + text
        notes.append("We added https:// in front of the address.")
    parts = urlsplit(text)
    if parts.scheme.lower() == "http":
        raise _error(
            "The Organization URL must start with https://, not http://.",
            f"Dynamics 365 is only served over HTTPS: use {EXAMPLE}-style addresses.",
        )
    if parts.scheme.lower() != "https":
        raise _error(
            f"'{parts.scheme}://' is not a web address scheme for Dynamics 365.",
            f"Enter an address that starts with https://, e.g. {EXAMPLE}.",
        )
    host = (parts.hostname or "").lower()
    if not host:
        raise _error("The Organization URL has no host name.", f"Enter it like {EXAMPLE}.")
    if parts.username or parts.password:
        raise _error(
            "The Organization URL must not contain a user name or password.",
            f"Enter only the address, e.g. {EXAMPLE}; you sign in on the next step.",
        )
    rest = parts.path.rstrip("/")
    if rest or parts.query or parts.fragment:
        removed = rest + (f"?{parts.query}" if parts.query else "")
        notes.append(
            f"We removed '{removed or '#' + parts.fragment}' from the end: the Organization "
            "URL is only the part up to the host name."
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise _error("The port in the Organization URL is not a number.", EXAMPLE) from exc
    netloc = host if port in (None, 443) else f"{host}:{port}"
    url = f"https://{netloc}"
    if is_loopback(url):
        if not local_org_allowed(settings):
            raise _error(
                f"{url} is the local Dataverse server, which is accepted only when the hub runs "
                "in development or demo mode.",
                f"Enter your Dynamics 365 organization's address, e.g. {EXAMPLE}.",
            )
        return OrgUrl(url, notes)
    if not is_dynamics_host(host):
        raise _error(
            f"{host} is not a Dynamics 365 address.",
            "The Organization URL ends in .dynamics.com (for example "
            f"{EXAMPLE} or https://contoso.crm4.dynamics.com), or a sovereign cloud's domain "
            "(.microsoftdynamics.us, .appsplatform.us, .dynamics.cn).",
        )
    if port not in (None, 443):
        raise _error(
            f"Dynamics 365 does not answer on port {port}.",
            f"Remove ':{port}' from the address.",
        )
    return OrgUrl(url, notes)


def probe(url: str, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
    """Check the host resolves and accepts a TLS port connection; raise `UserError` if not."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise _error(
            f"{host} could not be found (DNS has no such host).",
            "Check the spelling against the address bar in Dynamics 365; a deleted or renamed "
            "environment also has no address.",
        ) from exc
    last: OSError | None = None
    for family, kind, proto, _name, address in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
                return
        except OSError as exc:
            last = exc
    raise _error(
        f"{host} did not answer on port {port} ({type(last).__name__ if last else 'no address'}).",
        "Check the address, and that this hub can reach it (proxy or firewall); then try again.",
    )


def validate(raw: str, settings: Settings, *, check_reachable: bool = True) -> OrgUrl:
    """`normalise`, then `probe` the host unless told not to."""
    result = normalise(raw, settings)
    if check_reachable:
        probe(result.url)
    return result
