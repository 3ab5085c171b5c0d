"""The two small pages a person connecting QuickBooks sees: "connected" and "not connected, because …".

They never echo the code, the state or anything from the query string, load nothing from elsewhere, and tell the
browser not to cache them nor send them as a referrer (the callback URL carries the one-time code).
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

__all__ = ["PAGE_HEADERS", "connected_page", "error_page"]

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;line-height:1.5}}
h1{{font-size:1.4rem}} .ok{{color:#17663a}} .no{{color:#a61b1b}} code{{background:#f3f3f3;padding:0 .2rem}}</style>
</head><body><h1 class="{css}">{title}</h1>{body}</body></html>
"""


def connected_page(*, realm_id: str, company_name: str | None, reconnected: bool) -> HTMLResponse:
    company = escape(company_name) if company_name else f"company <code>{escape(realm_id)}</code>"
    verb = "reconnected" if reconnected else "connected"
    body = f"<p>QuickBooks is {verb}: {company}. Syncing resumes on its own; you can close this page.</p>"
    return HTMLResponse(
        _TEMPLATE.format(title="QuickBooks connected", css="ok", body=body), status_code=200, headers=PAGE_HEADERS
    )


def error_page(*, status_code: int, message: str) -> HTMLResponse:
    body = f"<p>{escape(message)}</p><p>Nothing was changed.</p>"
    return HTMLResponse(
        _TEMPLATE.format(title="QuickBooks not connected", css="no", body=body),
        status_code=status_code,
        headers=PAGE_HEADERS,
    )
