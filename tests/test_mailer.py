"""Email through a real SMTP server on localhost (aiosmtpd): plain with login, STARTTLS and SSL with a
self-signed certificate; the message it received is read back. The password never shows."""

from __future__ import annotations

import datetime as dt
import email
import logging
import ssl
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from monitoring import mailer
from roomsight.config import SmtpSettings
from roomsight.errors import MailError
from tests.conftest import free_port

PASSWORD = "s3cret-Passw0rd"
# The plain-SMTP server asks for a login without TLS on purpose: that is the case under test.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802 - aiosmtpd's handler hook
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):  # noqa: ANN001 - aiosmtpd's authenticator hook
    ok = auth_data.login == b"robot" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


def self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh localhost certificate, and a client context that trusts it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    client = ssl.create_default_context(cafile=str(tmp / "cert.pem"))
    return server, client


@pytest.fixture
def smtp_server():
    """Start a server with the given options; stopped after the test. It takes mail only after a login, as
    a relay does: a client that skipped it would be refused, not delivered."""
    started: list[Controller] = []

    def start(**kwargs) -> tuple[Inbox, int]:
        inbox, port = Inbox(), free_port()
        controller = Controller(inbox, hostname="localhost", port=port, authenticator=authenticate,
                                auth_required=True, **kwargs)
        controller.start()
        started.append(controller)
        return inbox, port

    yield start
    for c in started:
        c.stop()


def drift_result():
    from monitoring.drift import ColumnDrift, DriftResult

    return DriftResult(
        window="last day, region eu-west", reference_model="models:/roomtype/1", n_reference=54, n_current=200,
        columns={"brightness": ColumnDrift("K-S p_value", 1e-9, 0.05, True), "width": ColumnDrift("K-S p_value", 0.8, 0.05, False)},
        drifted_share=0.4, ood_share=0.2, reference_ood_share=0.0, flag_counts={"night_time": 40},
        held_counts={"night_time": 3}, predicted_share={}, alarm=True, reasons=["20% of photos out-of-domain (alarm at 10%)"])


def test_the_drift_email_says_when_the_window_was_sampled() -> None:
    """The command line and the report said a big window was compared as a sample; the email gave its size
    as if every prediction had been read."""
    import html
    from dataclasses import replace

    from monitoring import drift_mail

    result = replace(drift_result(), n_current=5000, n_window=80_000, sample_seed=7)
    said = "a uniform sample of 5,000 of the window's 80,000 predictions (seed 7)"
    assert f"Predictions compared:    {said}" in drift_mail.summary_text(result, "r.html", []).splitlines()
    assert html.escape(said) in drift_mail.summary_html(result, "r.html", [])


def test_the_drift_email_says_what_the_reference_photos_are() -> None:
    """Every drift email said the reference was the photos the model was trained and validated on; a model
    fitted as one network (tune full, --folds 1, --workers N) has its validation photos only."""
    from dataclasses import replace

    from monitoring import drift_mail
    from monitoring.reference import reference_photos

    for members, words in ((5, "54 photos it was trained and validated on"), (1, "54 validation photos"),
                           (None, "54 reference photos")):
        result = replace(drift_result(), reference_photos=reference_photos(members))
        text = drift_mail.summary_text(result, "r.html", [])
        assert f"Reference:               models:/roomtype/1, {words}" in text.splitlines()
        assert f"Reference: models:/roomtype/1, {words}<br>" in drift_mail.summary_html(result, "r.html", [])


def test_plain_smtp_with_login_delivers_text_html_and_attachment(smtp_server, tmp_path, caplog):
    from monitoring import drift_mail

    inbox, port = smtp_server(auth_require_tls=False)
    report = tmp_path / "drift-20261123.html"
    report.write_text("<html>evidently</html>")
    smtp = SmtpSettings(host="localhost", port=port, user="robot", password=PASSWORD, security="none",
                        sender="roomsight@example.org", recipients=("ops@example.org",))
    result = drift_result()
    with caplog.at_level(logging.DEBUG):
        mailer.send(smtp, [], "[roomsight] drift ALARM", drift_mail.summary_text(result, report.name, []),
                    drift_mail.summary_html(result, report.name, []), attachments=[report])
    assert len(inbox.messages) == 1
    rcpt, msg = inbox.messages[0]
    assert rcpt == ["ops@example.org"] and msg["From"] == "roomsight@example.org"
    assert msg["Subject"] == "[roomsight] drift ALARM"
    text = msg.get_body(("plain",)).get_content()
    for line in ("ALARM", "20% of photos out-of-domain", "Columns drifted:         40% (brightness)",
                 "Out-of-domain share:     20.0% (reference 0.0%)", "Flags raised:            night_time: 40",
                 "Held on the champion:    night_time: 3", "brightness  K-S p_value  score 1e-09  DRIFTED",
                 "No example photos", report.name):
        assert line in text, line
    body = msg.get_body(("html",)).get_content()
    assert "ALARM" in body and "40%" in body and "night_time: 40" in body and "night_time: 3" in body
    assert "<b>drifted</b>" in body and "brightness" in body
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == report.name and attachment.get_content() == "<html>evidently</html>"
    assert PASSWORD not in caplog.text and PASSWORD not in repr(smtp)


def test_wrong_password_is_a_clear_error_without_the_password(smtp_server):
    _inbox, port = smtp_server(auth_require_tls=False)
    smtp = SmtpSettings(host="localhost", port=port, user="robot", password="wrong-" + PASSWORD, security="none",
                        timeout_s=5)
    with pytest.raises(MailError, match="refused the login of user 'robot'") as info:
        mailer.send(smtp, ["a@example.org"], "s", "x")
    assert PASSWORD not in str(info.value)


def test_not_configured_and_unreachable_are_user_errors():
    with pytest.raises(MailError, match="smtp.host"):
        mailer.send(SmtpSettings(), ["a@example.org"], "s", "x")
    with pytest.raises(MailError, match="no recipients"):
        mailer.send(SmtpSettings(host="localhost"), [], "s", "x")
    with pytest.raises(MailError, match="could not send"):
        mailer.send(SmtpSettings(host="127.0.0.1", port=free_port(), security="none", timeout_s=2), ["a@b.c"], "s", "x")


def test_starttls_and_ssl(smtp_server, tmp_path):
    server_ctx, client_ctx = self_signed(tmp_path)
    inbox, port = smtp_server(tls_context=server_ctx, require_starttls=True)
    smtp = SmtpSettings(host="localhost", port=port, user="robot", password=PASSWORD, security="starttls")
    mailer.send(smtp, ["a@example.org"], "over starttls", "hello", ssl_context=client_ctx)
    assert inbox.messages[-1][1]["Subject"] == "over starttls"
    # Without trusting the certificate, the send fails instead of going out unencrypted.
    with pytest.raises(MailError, match="could not send"):
        mailer.send(smtp, ["a@example.org"], "untrusted", "hello")

    inbox_ssl, port_ssl = smtp_server(ssl_context=server_ctx, auth_require_tls=False)  # implicit TLS throughout
    smtp_ssl = smtp.model_copy(update={"port": port_ssl, "security": "ssl"})
    mailer.send(smtp_ssl, ["a@example.org"], "over ssl", "hello", ssl_context=client_ctx)
    assert inbox_ssl.messages[-1][1]["Subject"] == "over ssl"


@pytest.mark.parametrize("args,env,says", [
    (["drift", "report", "--email", "ops@example.org"], {}, "email is not configured"),
    (["drift", "report", "--email", "ops"], {"ROOMSIGHT_SMTP__HOST": "localhost"}, "not an email address: ops"),
    (["drift", "watch", "--times", "1"], {"ROOMSIGHT_SMTP__RECIPIENTS": '["ops@example.org"]'}, "email is not configured"),
])
def test_drift_commands_refuse_an_email_they_could_not_send_before_any_report(tmp_path, args, env, says):
    from typer.testing import CliRunner

    from shell.cli import app

    # An empty prediction log: without the check first, the error would be about the window, after the work.
    result = CliRunner().invoke(app, args, env={"ROOMSIGHT_HOME": str(tmp_path), **env})
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and says in out, out
