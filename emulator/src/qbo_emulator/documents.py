"""Invoice documents: the PDF rendering and e-mail sending endpoints (``/invoice/{Id}/pdf|send``).

The PDF is a small, valid one-page document naming the invoice (clients only store or forward the bytes).
Sending records what QBO records: ``EmailStatus`` becomes ``EmailSent``, ``DeliveryInfo`` gets the time, the
address given with ``sendTo`` replaces ``BillEmail``, and webhooks see an ``Emailed`` event.
"""

from __future__ import annotations

from typing import Any

from qbo_emulator import errors
from qbo_emulator.context import WriteContext
from qbo_emulator.store import Company

__all__ = ["invoice_pdf", "send_invoice"]

Row = dict[str, Any]


def _pdf_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def invoice_pdf(invoice: Row, company: Company) -> bytes:
    """A one-page PDF: company name, invoice number, customer and total."""
    lines = [
        company.settings.name,
        f"Invoice {invoice.get('DocNumber', invoice['Id'])}",
        f"Customer: {invoice.get('CustomerRef', {}).get('name', '')}",
        f"Total: {invoice.get('TotalAmt', 0)}  Balance: {invoice.get('Balance', 0)}",
    ]
    ascii_lines = [_pdf_text(line.encode("ascii", "replace").decode("ascii")) for line in lines]
    content = "BT /F1 14 Tf 72 740 Td 18 TL " + " ".join(f"({line}) '" for line in ascii_lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("latin-1")
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode("latin-1")
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode("latin-1")
    return bytes(out)


def send_invoice(ctx: WriteContext, invoice: Row, send_to: str | None) -> Row:
    """Mark an invoice e-mailed (to ``send_to`` or its BillEmail); 6000 when there is no address."""
    row = dict(invoice)
    if send_to:
        row["BillEmail"] = {"Address": send_to}
    if not (row.get("BillEmail") or {}).get("Address"):
        raise errors.validation("Please provide a valid email address to send the invoice.", "BillEmail")
    row["EmailStatus"] = "EmailSent"
    row["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": ctx.stamp}
    row["SyncToken"] = str(int(row.get("SyncToken", "0")) + 1)
    row["MetaData"] = dict(row["MetaData"], LastUpdatedTime=ctx.stamp)
    ctx.company.put("Invoice", row, ctx.now.timestamp())
    ctx.emit("Invoice", row["Id"], "Emailed")
    return row
