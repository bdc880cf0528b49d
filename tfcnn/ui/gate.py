"""The sign-in gate: an ASGI middleware in front of every endpoint of Streamlit's server.

With ``TFCNN_APP_PASSWORD`` set, ``make run`` (:mod:`tfcnn.ui.serve`) starts Streamlit through
``gated_app.py``, an ``st.App`` whose first middleware is :class:`SignInGate`. Before a browser
has signed in, nothing of Streamlit answers: not the script's websocket
(``/_stcore/stream``, refused at the handshake), not uploads (``/_stcore/upload_file``),
media (``/media``), metrics, health, host config, components or the static files. Every
HTTP request gets our own small sign-in page (status 401) instead; ``POST`` of the form to
:data:`SIGN_IN_PATH` with the right password sets a signed, HttpOnly cookie
(:class:`CookieSigner`) and every endpoint then answers as usual.

Wrong guesses are limited (:class:`GuessLimiter`): per client address, 5 wrong passwords
within 60 s lock that address out for 60 s, doubling with each further lockout up to 1 h;
over all clients, 30 wrong passwords within 60 s close the sign-in form for 60 s. Each
lockout is one ``tfcnn gate:`` line on the server's stderr. A locked-out client's password
is not even compared. The client address is the TCP peer, or, for a peer the operator
trusts as a reverse proxy (``TFCNN_TRUSTED_PROXIES``, applied by uvicorn's proxy-header
support), the address that proxy forwards.

This module imports neither Streamlit nor Starlette: it is plain ASGI, testable alone.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import os
import secrets
import sys
import time
import urllib.parse
from dataclasses import dataclass, field

#: Environment variable holding the app's password (required off the loopback interface).
ENV_PASSWORD = "TFCNN_APP_PASSWORD"
COOKIE = "tfcnn_auth"
SIGN_IN_PATH = "/_tfcnn/sign-in"
SIGN_OUT_PATH = "/_tfcnn/sign-out"
#: A sign-in form body larger than this is refused unread (413).
MAX_FORM_BYTES = 4096

LOG = logging.getLogger("tfcnn.gate")
if not LOG.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s tfcnn gate: %(message)s"))
    LOG.addHandler(_handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


@dataclass(frozen=True)
class GateLimits:
    """How many wrong passwords the gate takes, and for how long it then refuses.

    Attributes
    ----------
    per_client : int
        Wrong passwords from one address within ``window_s`` that lock it out.
    window_s : float
    first_lockout_s, max_lockout_s : float
        A client's first lockout; each further one doubles, up to ``max_lockout_s``.
    global_guesses : int
        Wrong passwords from all addresses within ``window_s`` that close the form to all.
    global_lockout_s : float
    session_s : float
        How long a sign-in lasts (the cookie's lifetime).
    """

    per_client: int = 5
    window_s: float = 60.0
    first_lockout_s: float = 60.0
    max_lockout_s: float = 3600.0
    global_guesses: int = 30
    global_lockout_s: float = 60.0
    session_s: float = 12 * 3600.0


@dataclass
class _Client:
    failures: list[float] = field(default_factory=list)  # times of recent wrong guesses
    lockouts: int = 0  # lockouts so far: the next one lasts first * 2**lockouts
    locked_until: float = 0.0
    last_seen: float = 0.0


class GuessLimiter:
    """Wrong-password bookkeeping per client address and over all of them.

    Memory is bounded: a client is forgotten once it has been quiet for ``max_lockout_s``
    past its last lockout, and the global limit bounds how many new clients can fail per
    window.
    """

    def __init__(self, limits: GateLimits = GateLimits(), clock=time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._clients: dict[str, _Client] = {}
        self._recent: list[float] = []  # wrong guesses of every client within the window
        self._closed_until = 0.0

    def wait_s(self, client: str) -> float:
        """Seconds ``client`` must wait before a guess is looked at (0: it may guess now)."""
        now = self.clock()
        entry = self._clients.get(client)
        mine = entry.locked_until - now if entry else 0.0
        return max(0.0, mine, self._closed_until - now)

    def failed(self, client: str) -> None:
        """Count a wrong password from ``client``; lock it (or everyone) out when over."""
        now, lim = self.clock(), self.limits
        self._forget_quiet(now)
        entry = self._clients.setdefault(client, _Client())
        entry.last_seen = now
        entry.failures = [t for t in entry.failures if now - t < lim.window_s] + [now]
        if len(entry.failures) >= lim.per_client:
            lockout = min(lim.max_lockout_s, lim.first_lockout_s * 2 ** entry.lockouts)
            entry.lockouts += 1
            entry.locked_until = now + lockout
            entry.failures = []
            LOG.warning("client %s locked out for %.0f s after %d wrong passwords within "
                        "%.0f s (lockout %d)", client, lockout, lim.per_client, lim.window_s,
                        entry.lockouts)
        self._recent = [t for t in self._recent if now - t < lim.window_s] + [now]
        if len(self._recent) >= lim.global_guesses and self._closed_until <= now:
            self._closed_until = now + lim.global_lockout_s
            self._recent = []
            LOG.warning("sign-in closed to every client for %.0f s after %d wrong passwords "
                        "within %.0f s", lim.global_lockout_s, lim.global_guesses,
                        lim.window_s)

    def succeeded(self, client: str) -> None:
        """A right password: the client's record of wrong ones is cleared."""
        self._clients.pop(client, None)

    def _forget_quiet(self, now: float) -> None:
        quiet = [c for c, e in self._clients.items()
                 if now - max(e.last_seen, e.locked_until) > self.limits.max_lockout_s]
        for c in quiet:
            del self._clients[c]

    def __len__(self) -> int:
        return len(self._clients)


class CookieSigner:
    """Signed sign-in tokens: ``<expiry>.<nonce>.<HMAC-SHA256>`` under a key made when the
    server starts (a restart signs everyone out)."""

    def __init__(self, key: bytes | None = None, clock=time.time) -> None:
        self._key = key or secrets.token_bytes(32)
        self.clock = clock

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode("ascii"), hashlib.sha256).hexdigest()

    def issue(self, lifetime_s: float) -> str:
        """A token valid for ``lifetime_s`` seconds from now."""
        body = f"{int(self.clock() + lifetime_s)}.{secrets.token_hex(16)}"
        return f"{body}.{self._mac(body)}"

    def valid(self, token: str | None) -> bool:
        """Whether ``token`` was issued by this signer and has not expired."""
        if not token or len(token) > 200:
            return False
        body, _, mac = token.rpartition(".")
        expiry = body.partition(".")[0]
        if not (body and expiry.isdigit()):
            return False
        try:
            expected = self._mac(body)
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(mac, expected) and int(expiry) > self.clock()


#: The signer and the guess limits of this server process, shared by the gate and the
#: pages' own sign-in form (:func:`tfcnn.ui.access.require_access`).
SIGNER = CookieSigner()
LIMITER = GuessLimiter()
#: Set when a :class:`SignInGate` is built in this process (the pages then know the
#: endpoints are gated).
GATE_ACTIVE = False


def cookie_value(header: str | None, name: str = COOKIE) -> str | None:
    """The value of cookie ``name`` in a ``Cookie:`` header, or None."""
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _page(message: str = "", *, error: bool = False) -> bytes:
    note = (f'<p role="alert" style="color:#b00">{html.escape(message)}</p>' if error else
            f"<p>{html.escape(message)}</p>" if message else "")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        "<title>Sign in · tfcnn</title></head>"
        "<body style='font-family:sans-serif;max-width:24em;margin:4em auto'>"
        "<h1>Sign in</h1>" + note +
        f"<form method=post action='{SIGN_IN_PATH}'>"
        "<label>Password <input type=password name=password autofocus required></label> "
        "<button type=submit>Sign in</button></form></body></html>").encode("utf-8")


class SignInGate:
    """ASGI middleware: every HTTP request and websocket of ``app`` needs a signed-in cookie.

    Parameters
    ----------
    app : ASGI application
        Streamlit's server (``st.App``'s Starlette application, behind this).
    password : str, optional
        Default: ``TFCNN_APP_PASSWORD`` at construction. Empty: the gate lets everything
        through (the app is then served on the loopback interface only).
    limiter : GuessLimiter, optional
    signer : CookieSigner, optional
        Default: :data:`LIMITER` and :data:`SIGNER`, shared with the pages.
    """

    def __init__(self, app, *, password: str | None = None, limiter: GuessLimiter | None = None,
                 signer: CookieSigner | None = None) -> None:
        global GATE_ACTIVE
        self.app = app
        self.password = os.environ.get(ENV_PASSWORD, "") if password is None else password
        self.limiter = limiter or LIMITER
        self.signer = signer or SIGNER
        GATE_ACTIVE = True

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.password:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        token = cookie_value(headers.get(b"cookie", b"").decode("latin-1"))
        path = scope.get("path", "")
        if scope["type"] == "http" and path == SIGN_IN_PATH:
            return await self._sign_in(scope, receive, send, headers)
        if scope["type"] == "http" and path == SIGN_OUT_PATH:
            return await self._redirect(send, "/", f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; "
                                                  "SameSite=Lax")
        if self.signer.valid(token):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})  # the handshake gets 403
            return
        await self._respond(send, 401, _page())

    @staticmethod
    def client(scope) -> str:
        """The client's address (uvicorn has already applied a trusted proxy's header)."""
        peer = scope.get("client")
        return str(peer[0]) if peer else "unknown"

    async def _sign_in(self, scope, receive, send, headers) -> None:
        if scope.get("method") != "POST":
            return await self._respond(send, 200, _page())
        client = self.client(scope)
        wait = self.limiter.wait_s(client)
        if wait > 0:
            return await self._respond(
                send, 429, _page(f"Too many wrong passwords: try again in {wait:.0f} s.",
                                 error=True), extra=[(b"retry-after", str(int(wait) + 1).encode())])
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > MAX_FORM_BYTES:
            return await self._respond(send, 413, _page("Form too large.", error=True))
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if len(body) > MAX_FORM_BYTES:
                return await self._respond(send, 413, _page("Form too large.", error=True))
            if not message.get("more_body"):
                break
        fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
        given = (fields.get("password") or [""])[0]
        if hmac.compare_digest(given.encode("utf-8"), self.password.encode("utf-8")):
            self.limiter.succeeded(client)
            secure = "; Secure" if scope.get("scheme") in ("https", "wss") else ""
            lifetime = self.limiter.limits.session_s
            cookie = (f"{COOKIE}={self.signer.issue(lifetime)}; Max-Age={int(lifetime)}; "
                      f"Path=/; HttpOnly; SameSite=Lax{secure}")
            return await self._redirect(send, "/", cookie)
        self.limiter.failed(client)
        await self._respond(send, 401, _page("Wrong password.", error=True))

    @staticmethod
    async def _respond(send, status: int, body: bytes, extra=()) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"), (b"x-frame-options", b"DENY"), *extra]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _redirect(send, location: str, cookie: str) -> None:
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode()), (b"set-cookie", cookie.encode("latin-1")),
            (b"content-length", b"0"), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": b""})
