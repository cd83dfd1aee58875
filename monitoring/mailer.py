"""Email of drift reports over SMTP: an HTML summary of the headline numbers with the Evidently report
attached. Server, port, login and transport security (none, STARTTLS, SSL) come from `settings.smtp`
(config file or ROOMSIGHT_SMTP__* environment); the password is used for the login only and never
appears in a message, a log line or an error.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

from roomsight.config import SmtpSettings
from roomsight.errors import UserError

log = logging.getLogger(__name__)


class MailError(UserError):
    """Email is not configured, or the server refused it; the message says which, without secrets."""


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


def send(smtp: SmtpSettings, recipients: Sequence[str], subject: str, html_body: str,
         attachments: Sequence[Path] = (), ssl_context: ssl.SSLContext | None = None) -> None:
    """Send one HTML message. `ssl_context` overrides certificate checking (tests with self-signed certs)."""
    to = ready(smtp, recipients)
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, smtp.sender, ", ".join(to)
    msg.set_content("This message is HTML; open it in a mail client that shows HTML.")
    msg.add_alternative(html_body, subtype="html")
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


def summary_html(result: dict, report_name: str) -> str:
    """The headline numbers of a drift result (DriftResult.to_dict()) as a small HTML page."""
    e = html.escape
    status = "ALARM" if result["alarm"] else "no alarm"
    colour = "#b00020" if result["alarm"] else "#1b5e20"
    rows = "".join(
        f"<tr><td>{e(name)}</td><td>{e(col['method'])}</td><td>{col['score']:.4g}</td>"
        f"<td>{'<b>drifted</b>' if col['drifted'] else 'ok'}</td></tr>"
        for name, col in result["columns"].items())
    flags = ", ".join(f"{e(k)}: {v}" for k, v in result["flag_counts"].items()) or "none"
    held = ", ".join(f"{e(k)}: {v}" for k, v in result["held_counts"].items()) or "none"
    reasons = "".join(f"<li>{e(r)}</li>" for r in result["reasons"])
    return f"""<html><body style="font-family: sans-serif">
<h2>roomsight drift report: <span style="color:{colour}">{status}</span></h2>
<ul>{reasons}</ul>
<p>Window: {e(result['window'])}<br>Reference: {e(result['reference_model'])} validation set
({result['n_reference']} images)<br>Logged predictions compared: {result['n_current']}</p>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>share of columns drifted</th><td>{result['drifted_share']:.0%}</td></tr>
<tr><th>out-of-domain share (reference)</th><td>{result['ood_share']:.1%} ({result['reference_ood_share']:.1%})</td></tr>
<tr><th>flags raised</th><td>{flags}</td></tr>
<tr><th>held on the champion</th><td>{held}</td></tr>
</table>
<h3>Columns</h3>
<table border="1" cellpadding="4" cellspacing="0"><tr><th>column</th><th>test</th><th>score</th><th></th></tr>{rows}</table>
<p>The full Evidently report is attached ({e(report_name)}).</p>
</body></html>"""
