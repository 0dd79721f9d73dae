"""The modules of the application, in the order their block hooks run. Add a module here (and
its params type to chain.app.params.registry): the app routes messages, queries and hooks from
this list, and refuses a list in which two modules handle the same message type."""

from __future__ import annotations

from chain.app.auth.module import MODULE as AUTH
from chain.app.bank.module import MODULE as BANK
from chain.app.context import Module
from chain.app.gov.module import MODULE as GOV
from chain.app.params.module import MODULE as PARAMS
from chain.app.validators.module import MODULE as VALIDATORS

MODULES: tuple[Module, ...] = (AUTH, BANK, PARAMS, VALIDATORS, GOV)
