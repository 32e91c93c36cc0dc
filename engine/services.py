"""The service as the web layer and the command line see it: one object with every use case.

The use cases live in :mod:`engine.usecases`, one module per capability (its docstring maps them to pages); this
module only composes them. The web layer calls these and nothing else of the engine (besides errors and ``Actor``).
"""
from __future__ import annotations

from .usecases.accounts import Accounts
from .usecases.audit import Audit
from .usecases.base import CaseFailed, ServiceBase, StartedCase
from .usecases.calendar import CalendarUseCases
from .usecases.cases import Cases
from .usecases.digests import Digests
from .usecases.directory import AdminRecords
from .usecases.documents import Documents
from .usecases.files import Files
from .usecases.intake import Intake
from .usecases.keyregister import KeyRegister
from .usecases.messages import Messages
from .usecases.notifications import Notifications
from .usecases.reassign import Reassignment
from .usecases.sessions import Sessions
from .usecases.staff import Staff
from .usecases.step import CaseStep
from .usecases.supervision import Supervision
from .usecases.tasks import Tasks
from .usecases.timers import Timers
from .usecases.units import Units
from .usecases.versions import Versions

__all__ = ["Bangban", "CaseFailed", "StartedCase"]


class Bangban(Accounts, Sessions, Staff, AdminRecords, Units, Intake, Tasks, Messages, Reassignment, Cases, Documents,
              CalendarUseCases, Versions, Audit, Digests, Supervision, Notifications, Timers, KeyRegister, Files, CaseStep,
              ServiceBase):
    """The 帮办代办 service: a database and the process set new cases start on."""
