"""What the tills send, by kind: idempotency, references, receipts, returns, catalogue.

The public names are importable from here (`from sales.ingest import receipt_ingest`) as well
as from their modules.
"""

from .catalogue import products_upsert_bulk
from .idempotency import (
    IdempotencyConflict,
    Outcome,
    content_hash,
    receipt_canonical,
    return_canonical,
)
from .receipts import (
    BulkResult,
    receipt_ingest,
    receipt_lines_for_output,
    receipts_ingest_bulk,
    schedule_metrics_refresh,
)
from .references import (
    CustomerIndex,
    categories_for_paths,
    customer_index,
    products_for_lines,
)
from .returns import return_ingest

__all__ = [
    "BulkResult",
    "CustomerIndex",
    "IdempotencyConflict",
    "Outcome",
    "categories_for_paths",
    "content_hash",
    "customer_index",
    "products_for_lines",
    "products_upsert_bulk",
    "receipt_canonical",
    "receipt_ingest",
    "receipt_lines_for_output",
    "receipts_ingest_bulk",
    "return_canonical",
    "return_ingest",
    "schedule_metrics_refresh",
]
