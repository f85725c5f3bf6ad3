"""Email through Django's configured mail backend (SMTP in production)."""

from __future__ import annotations

import smtplib

from django.core.mail import EmailMultiAlternatives, get_connection

from . import ChannelBackend, Outgoing, PermanentError, TransientError


class EmailChannel(ChannelBackend):
    """Sends over one connection per batch; a failed connection is reopened on the next send."""

    connection = None

    def open(self) -> None:
        connection = get_connection(fail_silently=False)
        # Opened here, so Django's backend keeps it for the whole batch instead of connecting
        # and saying QUIT around every message. A server that is down now is reported by the
        # first `send` as a transient error, per message.
        try:
            connection.open()
        except (OSError, smtplib.SMTPException):
            return
        self.connection = connection

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except (OSError, smtplib.SMTPException):
                # The server is gone already; nothing is left to release.
                pass
            self.connection = None

    def send(self, message: Outgoing) -> str:
        if self.connection is None:
            self.open()
        if self.connection is None:
            raise TransientError("cannot connect to the mail server")
        headers = {"Message-ID": message.idempotency_key, **message.headers}
        if message.unsubscribe_url:
            headers["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.text,
            to=[message.to],
            headers=headers,
            connection=self.connection,
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        try:
            email.send()
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            self._drop_connection()
            if codes and all(code >= 500 for code in codes):
                raise PermanentError(str(error)) from error
            raise TransientError(str(error)) from error
        except smtplib.SMTPResponseException as error:
            self._drop_connection()
            if error.smtp_code >= 500:
                raise PermanentError(f"{error.smtp_code} {error.smtp_error!r}") from error
            raise TransientError(f"{error.smtp_code} {error.smtp_error!r}") from error
        except (smtplib.SMTPException, OSError) as error:
            self._drop_connection()
            raise TransientError(repr(error)) from error
        return message.idempotency_key

    def _drop_connection(self) -> None:
        # After an error the SMTP session state is unknown: start the next send afresh.
        self.close()
