"""E-mail over SMTP (``smtplib``): plain text, UTF-8, ``Message-ID`` derived from the idempotency key."""
from __future__ import annotations

import hashlib
import smtplib
from email.message import EmailMessage
from email.utils import format_datetime

from . import ChannelError, Message, NotifySettings


class EmailChannel:
    name, label = "email", "电子邮件"

    def __init__(self, settings: NotifySettings):
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.smtp_host and self.settings.smtp_from)

    def compose(self, m: Message) -> EmailMessage:
        s = self.settings
        mail = EmailMessage()
        mail["From"] = s.smtp_from
        mail["To"] = m.address
        mail["Subject"] = m.subject
        mail["Date"] = format_datetime(m.created_at)
        domain = (s.smtp_from or "bangban").rpartition("@")[2] or "bangban"
        mail["Message-ID"] = f"<{hashlib.sha256(m.idem_key.encode()).hexdigest()[:32]}@{domain}>"
        mail["X-Bangban-Delivery"] = m.idem_key
        lines = [f"{m.display_name or m.username}：", "", m.text]
        if m.case_no:
            lines += ["", f"办件编号：{m.case_no}"]
        if m.link:
            lines += [f"查看：{m.link}"]
        lines += ["", "武陟县政务服务帮办代办（本邮件由系统发送，请勿直接回复）"]
        mail.set_content("\n".join(lines), charset="utf-8")
        return mail

    def send(self, m: Message) -> None:
        s = self.settings
        if not self.configured:
            raise ChannelError("邮件服务器未配置，请系统管理员配置")
        if not m.address:
            raise ChannelError("没有登记电子邮箱，无法发送邮件")
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.timeout) as smtp:
                if s.smtp_starttls:
                    smtp.starttls()
                if s.smtp_user:
                    smtp.login(s.smtp_user, s.smtp_password or "")
                refused = smtp.send_message(self.compose(m))
        except smtplib.SMTPRecipientsRefused as exc:
            raise ChannelError("邮件服务器拒收该收件地址") from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelError("邮件服务器登录失败，请检查账号与密码配置") from exc
        except smtplib.SMTPResponseException as exc:
            raise ChannelError(f"邮件服务器答复错误（代码 {exc.smtp_code}）") from exc
        except TimeoutError as exc:
            raise ChannelError(f"邮件服务器在 {s.timeout:g} 秒内没有答复") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError("无法连接邮件服务器") from exc
        if refused:
            raise ChannelError("邮件服务器拒收该收件地址")
