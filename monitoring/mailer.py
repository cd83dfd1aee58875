"""Email over SMTP: a text/plain body, optionally the same as HTML with inline images, and attachments.
Server, port, login and transport security (none, STARTTLS, SSL) come from `settings.smtp` (config file
or ROOMSIGHT_SMTP__* environment); the password is used for the login only and never appears in a
message, a log line or an error. What a drift email says is `monitoring.drift_mail`'s; a rollout
event's, `monitoring.notify.messages`'.
"""

from __future__ import annotations

import logging
import mimetypes
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from roomsight.config import SmtpSettings
from roomsight.errors import MailError

log = logging.getLogger(__name__)


def ready(smtp: SmtpSettings, recipients: Sequence[str]) -> list[str]:
    """The recipients (`recipients`, else smtp.recipients), or a MailError if nothing could be sent: checked
    by the commands before a report is computed, or a watch started, that would end in a failed send."""
    to = [r for r in (recipients or smtp.recipients) if r]
    if not smtp.host:
        raise MailError("email is not configured: set smtp.host (ROOMSIGHT_SMTP__HOST) and, if the server needs a "
                        "login, smtp.user and smtp.password")
    if not to:
        raise MailError("no recipients: pass --email ADDRESS or set smtp.recipients")
    bad = [r for r in to if "@" not in r]
    if bad:
        raise MailError(f"not an email address: {', '.join(bad)}")
    return to


@dataclass(frozen=True)
class InlineImage:
    """A JPEG shown inside the HTML body, which refers to it as `cid:<cid>`."""

    cid: str
    data: bytes
    filename: str


def send(smtp: SmtpSettings, recipients: Sequence[str], subject: str, text: str, html: str | None = None, *,
         images: Sequence[InlineImage] = (), attachments: Sequence[Path] = (),
         ssl_context: ssl.SSLContext | None = None) -> None:
    """Send one message: `text` for every mail client, `html` as its alternative with `images` inline.
    `ssl_context` overrides certificate checking (tests with self-signed certs)."""
    to = ready(smtp, recipients)
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, smtp.sender, ", ".join(to)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
        html_part = msg.get_body(("html",))
        for image in images:
            html_part.add_related(image.data, maintype="image", subtype="jpeg", cid=f"<{image.cid}>",
                                  filename=image.filename, disposition="inline")
    for path in attachments:
        kind = (mimetypes.guess_type(path.name)[0] or "application/octet-stream").split("/", 1)
        msg.add_attachment(path.read_bytes(), maintype=kind[0], subtype=kind[1], filename=path.name)
    context = ssl_context or ssl.create_default_context()
    try:
        if smtp.security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout_s, context=context)
        else:
            server = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s)
        with server:
            if smtp.security == "starttls":
                server.starttls(context=context)
            if smtp.user:
                server.login(smtp.user, smtp.password or "")
            server.send_message(msg)
    except smtplib.SMTPAuthenticationError:
        raise MailError(f"the SMTP server {smtp.host}:{smtp.port} refused the login of user {smtp.user!r}: "
                        "check smtp.user and smtp.password") from None
    except (smtplib.SMTPException, OSError) as exc:
        # The exception text is the server's or the socket's; neither ever contains our password.
        raise MailError(f"could not send email via {smtp.host}:{smtp.port} ({smtp.security}): "
                        f"{type(exc).__name__}: {exc}") from None
    log.info("sent %r to %s via %s:%s", subject, ", ".join(to), smtp.host, smtp.port)
