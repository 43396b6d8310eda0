"""The PO snapshot contract's output columns, written out from docs/po_snapshots.md (not taken
from the module under test), for the tests that check the CSV and the table against it."""

SPEC_OUTPUT_COLUMNS = [
    "snapshot_date",
    "po_number",
    "store_id",
    "sku",
    "supplier_id",
    "supplier_name",
    "po_date",
    "expected_date",
    "qty_ordered",
    "qty_received",
    "qty_open",
    "status_norm",
    "days_overdue",
    "is_overdue",
    "source_file",
]
