"""EN 16931 e-invoices of finalized invoice-mode documents: the Factur-X / ZUGFeRD CII XML
(``cii.py``), the UBL 2.1 / PEPPOL BIS Billing 3.0 XML (``ubl.py``) and the Factur-X PDF/A-3
with the CII XML embedded (``facturx_pdf.py``). ``model.py`` turns an ``InvoiceView`` into
the one set of values both syntaxes write, and checks that they add up."""
