"""Per-customer metrics (filled in by the analytics work)."""


def customer_metrics_refresh(*, customer_id: int) -> None:
    """Recompute the metrics of one customer. Not implemented yet: analytics issue #5."""
    raise NotImplementedError("customer metrics arrive with the analytics issue")
