"""A local SMTP server that keeps what it receives: the demo's team inbox. Real SMTP (aiosmtpd) on
localhost, so the drift email goes through the same mailer a team's server would receive from."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from aiosmtpd.controller import Controller


class _Saver:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saved: list[Path] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802 - aiosmtpd's hook
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        path = self.folder / f"{len(self.saved) + 1:03d}.eml"
        path.write_bytes(envelope.content)
        self.saved.append(path)
        (self.folder / f"{len(self.saved):03d}.subject.txt").write_text(str(msg["Subject"]) + "\n")
        return "250 OK"


class Mailbox:
    def __init__(self, folder: Path, port: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._saver = _Saver(folder)
        self._controller = Controller(self._saver, hostname="127.0.0.1", port=port)

    def __enter__(self) -> Mailbox:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def saved(self) -> list[Path]:
        return list(self._saver.saved)
