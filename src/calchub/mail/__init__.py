"""Outgoing email: the message type, transports and the server's message templates."""

from calchub.mail.base import Mailer, MailError
from calchub.mail.factory import mailer_from_settings
from calchub.mail.message import Email
from calchub.mail.outbox import OutboxMailer, list_messages
from calchub.mail.smtp import SmtpMailer
from calchub.mail.templates import (
    invite_email,
    password_reset_email,
    verify_address_email,
    welcome_email,
)

__all__ = [
    "Email",
    "MailError",
    "Mailer",
    "OutboxMailer",
    "SmtpMailer",
    "invite_email",
    "list_messages",
    "mailer_from_settings",
    "password_reset_email",
    "verify_address_email",
    "welcome_email",
]
