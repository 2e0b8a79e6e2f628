"""moto's DynamoDB at the cost AWS charges: a transaction costs its items, a Query its partition.

Two patches, both keeping moto's own outcome of every call (measured 2026-11-30 on a 1,000-contract
close: the runtime was CPU-bound in these two places):

- TransactWriteItems: moto 5.2 backs up every table a transaction touches with `copy.deepcopy(table)`
  before applying it, so each version append costs time and garbage in proportion to the table (seeding
  or closing n contracts is O(n^2); a 1,000-contract close held gigabytes in the runtime). AWS applies a
  transaction at the cost of its own items; so does this patch: it backs up only the items the
  transaction names, lets moto apply it with the table itself as its "backup" (moto's rollback becomes a
  no-op) and on any failure puts those items back as they were. The runtime serves one moto call at a
  time, so no other call sees a half-applied transaction.
- Query on the table's own key: moto sorts every item of the table to find one partition (a version
  history read cost O(table)); the patched query hands moto's code that partition's items only.

Two parse caches, for what moto re-parses on every call from the expression string alone (py-spy on
the runtime during R1: 7-10 % of its CPU lexing condition expressions, most of it compiling the same six
regular expressions per token):

- a condition expression's tokens (`ConditionExpressionParser._lex_condition_expression`): immutable
  named tuples whose child lists stay empty, so one tuple of them per expression string; the attribute
  names and values are applied after lexing, on every call, as before;
- an update expression's syntax tree (`UpdateExpressionParser.make`, parsed twice per UpdateItem): moto
  reads the tree and validates a deep copy of it (`Validator.__init__`), never the tree itself.

An invalid expression raises as before and is not cached.

Installed once, process-wide, by the local runtime (like the Lambda host).
"""

from __future__ import annotations

import copy
import functools
import threading
import types
from collections import deque
from typing import Any

_PATCHED = "_pssync_item_level_transactions"


def _shallow_for_tables(table_type: type) -> types.SimpleNamespace:
    """`copy` as moto's dynamodb models see it: a Table is 'copied' as itself, anything else for real."""

    def deepcopy(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, table_type) else copy.deepcopy(value, memo)

    return types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)


def _key_of(backend: Any, op_type: str, op: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    table_name = op.get("TableName")
    if not table_name or table_name not in backend.tables:
        return None
    if op_type != "Put":
        return table_name, dict(op.get("Key") or {})
    table = backend.tables[table_name]
    item = op.get("Item") or {}
    key = {table.hash_key_attr: item.get(table.hash_key_attr)}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = item.get(table.range_key_attr)
    return table_name, key


def _install_partition_query(table_type: Any) -> None:
    original = table_type.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is not None or hash_key is None:
            return original(self, hash_key, *args, **kwargs)
        if hash_key not in self.items:  # `in`: self.items is a defaultdict, a lookup would insert
            partition: list[Any] = []
        elif self.range_key_attr:
            partition = list(self.items[hash_key].values())
        else:
            partition = [self.items[hash_key]]
        self.all_items = lambda: partition  # moto's query filters all_items() by hash key, then sorts
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    table_type.query = query


_PARSE_CACHE_SIZE = 4096


def _install_parse_caches() -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    lex = ConditionExpressionParser._lex_condition_expression
    lexed: dict[str, tuple[Any, ...]] = {}
    lock = threading.Lock()

    def lex_once(self: Any) -> deque[Any]:
        expression = self.condition_expression
        with lock:
            tokens = lexed.get(expression)
        if tokens is None:
            tokens = tuple(lex(self))
            with lock:
                if len(lexed) < _PARSE_CACHE_SIZE:
                    lexed[expression] = tokens
        return deque(tokens)  # the parser consumes its deque; the tokens themselves are never changed

    ConditionExpressionParser._lex_condition_expression = lex_once  # type: ignore[method-assign]
    make = functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)(UpdateExpressionParser.make)
    UpdateExpressionParser.make = make


def install() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend, _PATCHED, False):
        return
    _install_partition_query(Table)
    _install_parse_caches()
    models.copy = _shallow_for_tables(Table)  # type: ignore[attr-defined,assignment]
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for entry in transact_items:
            if len(entry) != 1:
                continue  # moto refuses it before writing anything
            op_type, op = next(iter(entry.items()))
            located = _key_of(self, op_type, op)
            if located is None or op_type == "ConditionCheck":
                continue
            table_name, key = located
            try:
                current = self.get_item(table_name, key)
            except Exception:  # noqa: S112 - an invalid key: moto refuses the transaction, writing nothing
                continue
            backups.append((table_name, key, None if current is None else current.to_json()["Attributes"]))
        try:
            original(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(backups):
                if attributes is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    setattr(DynamoDBBackend, _PATCHED, True)
