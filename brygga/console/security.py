"""Who is asking, what they may do, and the console's two secrets-derived tokens.

* :class:`Principal` — the Airflow user of a request and the action areas the auth manager lets
  them act in (``AREAS``: each area is allowed by the right to run one review DAG);
* CSRF — a cookie-authenticated POST must carry ``csrf`` = HMAC(secret, the session's JWT); a
  bearer-authenticated one (an API client, not a browser) needs none;
* person tokens — a personnummer searched for in the audit trail travels in the URL only
  encrypted (Fernet under a key derived from the secret), never in clear: not in the browser's
  history, not in the API server's access log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken

#: Action area -> the DAG whose runs a user must be allowed to trigger to act there from the console.
AREAS: dict[str, str] = {
    "admissions": "brygga_admission_review",
    "cases": "brygga_aterbud_cases",
    "quarantine": "brygga_admission_review",
    "offers": "brygga_offer_export",
    "reconciliation": "brygga_reconciliation",
    "schedule": "brygga_schedule_export",
    "alerts": "brygga_alerts",
}


class Unauthenticated(Exception):
    """No valid login on the request; ``login_url`` (if any) is offered to browsers."""

    def __init__(self, detail: str = "Not authenticated", login_url: str | None = None):
        super().__init__(detail)
        self.detail, self.login_url = detail, login_url


class Forbidden(Exception):
    """Logged in, but not allowed (to see the console, or to do this)."""


@dataclass(frozen=True)
class Principal:
    name: str
    may: frozenset[str] = field(default_factory=frozenset)  # the action areas (AREAS) allowed
    session: str | None = None  # the cookie's JWT: set when the request is cookie-authenticated

    def can(self, area: str) -> bool:
        return area in self.may


class Tokens:
    """CSRF and person tokens under one secret (the API server's ``[api_auth] jwt_secret``)."""

    def __init__(self, secret: bytes | str):
        self.secret = secret.encode() if isinstance(secret, str) else secret
        key = hashlib.sha256(b"brygga-console-person:" + self.secret).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def csrf(self, session: str | None) -> str:
        if not session:
            return ""
        return hmac.new(self.secret, b"brygga-console-csrf:" + session.encode(), hashlib.sha256).hexdigest()[:40]

    def check_csrf(self, p: Principal, sent: str | None) -> None:
        if p.session is None:  # bearer token: not a browser's ambient credential
            return
        if not sent or not hmac.compare_digest(sent, self.csrf(p.session)):
            raise Forbidden("CSRF-kontrollen misslyckades: ladda om sidan och försök igen")

    def flash(self, ok: bool, text: str) -> str:
        """An action's outcome for the page it redirects to: signed, so no link can forge one."""
        body = base64.urlsafe_b64encode(json.dumps([ok, text[:500]]).encode()).decode().rstrip("=")
        return f"{body}.{self._sign(b'flash:' + body.encode())}"

    def unflash(self, token: str | None) -> dict[str, object] | None:
        if not token or "." not in token:
            return None
        body, sig = token.rsplit(".", 1)
        if not hmac.compare_digest(sig, self._sign(b"flash:" + body.encode())):
            return None
        try:
            ok, text = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        return {"ok": bool(ok), "text": str(text)}

    def _sign(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()[:32]

    def person(self, personnummer: str) -> str:
        return self._fernet.encrypt(personnummer.encode()).decode()

    def unperson(self, token: str, *, ttl: int = 12 * 3600) -> str | None:
        try:
            return self._fernet.decrypt(token.encode(), ttl=ttl).decode()
        except (InvalidToken, ValueError):
            return None
