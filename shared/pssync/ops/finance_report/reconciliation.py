"""The reconciliation slot's rows from what `pssync reconcile --format json` writes, read as plain JSON:
a list of row objects, `{"rows": [...]}`, or a portfolio `{"engagements": [...]}` whose nested sides are
flattened into dotted columns. No import of the reconciliation's models: the report shows whatever columns
the reconciliation has, so either side can change its shape without breaking the other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class NotReconciliationRows(ValueError):
    """The document holds no list of row objects."""


def _cell(value: Any) -> Any:
    if isinstance(value, Mapping) and set(value) == {"amount", "currency"}:
        return f"{value['amount']} {value['currency']}"  # Money as JSON
    if isinstance(value, list):
        if all(isinstance(v, Mapping) and "cause" in v for v in value):  # variances: cause and what it is
            return "; ".join(f"{v['cause']}: {v.get('detail', '')}".rstrip(": ") for v in value)
        return ", ".join(str(_cell(v)) for v in value)
    return value


def flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted columns (`erp.invoiced_to_date`); Money becomes "amount currency"."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and set(value) != {"amount", "currency"}:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = _cell(value)
    return flat


def rows_from_document(document: Any) -> list[dict[str, Any]]:
    rows = document
    if isinstance(document, Mapping):
        rows = next((document[k] for k in ("rows", "engagements") if isinstance(document.get(k), list)), None)
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise NotReconciliationRows(
            'expected a JSON array of objects, {"rows": [...]} or a reconciliation {"engagements": [...]}'
        )
    return [flatten(row) for row in rows]
