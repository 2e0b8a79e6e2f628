"""Just enough of CloudFormation's intrinsic functions to resolve a CDK template locally."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PSEUDO_PARAMETERS = {
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "pssync-local",
    "AWS::NoValue": None,
}

RefResolver = Callable[[str], Any]
AttResolver = Callable[[str, str], Any]


class Unresolvable(LookupError):
    pass


def resolve(value: Any, ref: RefResolver, get_att: AttResolver) -> Any:
    """Resolve Ref / Fn::GetAtt / Fn::Join / Fn::Sub / Fn::Select / Fn::Split recursively."""
    if isinstance(value, list):
        return [resolve(v, ref, get_att) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return PSEUDO_PARAMETERS[arg] if arg in PSEUDO_PARAMETERS else ref(arg)
        if key == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return get_att(logical_id, attribute)
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(str(resolve(p, ref, get_att)) for p in parts)
        if key == "Fn::Select":
            index, items = arg
            return resolve(items, ref, get_att)[int(resolve(index, ref, get_att))]
        if key == "Fn::Split":
            separator, text = arg
            return str(resolve(text, ref, get_att)).split(separator)
        if key == "Fn::Sub":
            template, variables = (arg, {}) if isinstance(arg, str) else arg
            resolved_vars = {k: resolve(v, ref, get_att) for k, v in variables.items()}
            return _substitute(template, resolved_vars, ref, get_att)
        if key.startswith("Fn::"):
            raise Unresolvable(f"intrinsic {key} is not supported by the local runtime")
    return {k: resolve(v, ref, get_att) for k, v in value.items()}


def _substitute(template: str, variables: dict[str, Any], ref: RefResolver, get_att: AttResolver) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in variables:
            return str(variables[name])
        if name in PSEUDO_PARAMETERS:
            return str(PSEUDO_PARAMETERS[name])
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return str(get_att(logical_id, attribute))
        return str(ref(name))

    return re.sub(r"\$\{([^}]+)\}", replace, template)
