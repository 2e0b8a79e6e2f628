"""The workflows pssync deploys: one module per workflow, each defining `SPEC` (a WorkflowSpec).

A new workflow is a new module here (plus its ASL file and step functions); the stack builds an inbox, a
bus rule per detail-type it starts on, the state machine and its starter for every spec, in module order.
"""

from __future__ import annotations

import importlib
import pkgutil

from infra.constructs.workflows import WorkflowSpec


def catalog() -> tuple[WorkflowSpec, ...]:
    specs: list[WorkflowSpec] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        spec = getattr(importlib.import_module(f"{__name__}.{module_info.name}"), "SPEC", None)
        if not isinstance(spec, WorkflowSpec):
            raise TypeError(f"{__name__}.{module_info.name} defines no SPEC = WorkflowSpec(...)")
        specs.append(spec)
    starters = [event for spec in specs for event in spec.starts_on]
    duplicated = {event for event in starters if starters.count(event) > 1}
    if duplicated:
        raise ValueError(f"each detail-type starts one workflow; several start on {sorted(duplicated)}")
    return tuple(specs)


def spec_named(name: str) -> WorkflowSpec:
    return next(spec for spec in catalog() if spec.name == name)
