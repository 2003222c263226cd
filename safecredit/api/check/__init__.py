"""信用核查 — the check page for approval offices (issue 14 §1), served at `/check`.

Sign in with an API key (scope restrictions:read) into a server-side session, paste or upload
up to 1,000 codes, get the API batch's answers as a dated report (print, PDF, .xlsx) whose check
id the audit log holds. Modules: `routes` (the router), `guard` (session, key and CSRF checks),
`sessions` (server-side sessions), `codes_input` (pasted text, .csv, .xlsx → codes), `checking`
(one check: answers and their frame), `render` (templates, PDF), `xlsx`.
"""

from .guard import sessions_of
from .routes import check_router

__all__ = ["check_router", "sessions_of"]
