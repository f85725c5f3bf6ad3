"""Import of customer cards from XLSX/CSV: reading, header mapping, matching, dry run, run, revert.

The engine (`engine.py`) is generic over the kind of rows: customers are processed here, and the
purchase-history processor registers itself from `sales` (the layer above), so this package
never imports `sales`.
"""
