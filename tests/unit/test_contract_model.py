import pytest
from pydantic import ValidationError

from pssync.model import examples
from pssync.model.contract import ContractTerms, scheduled_billing_total


def _terms_dict() -> dict:
    return examples.transformation_programme().model_dump(mode="json")


def test_example_contract_round_trips_through_json() -> None:
    terms = examples.transformation_programme()
    assert ContractTerms.model_validate_json(terms.model_dump_json()) == terms


def test_billing_total_of_the_example_matches_its_price() -> None:
    terms = examples.transformation_programme()
    assert scheduled_billing_total(terms) == terms.transaction_price.amount


def test_obligation_ids_must_be_unique() -> None:
    data = _terms_dict()
    data["obligations"][1]["obligation_id"] = data["obligations"][0]["obligation_id"]
    with pytest.raises(ValidationError, match="obligation ids must be unique"):
        ContractTerms.model_validate(data)


def test_amounts_must_be_in_the_contract_currency() -> None:
    data = _terms_dict()
    data["obligations"][0]["standalone_selling_price"]["currency"] = "USD"
    with pytest.raises(ValidationError, match="contract currency EUR"):
        ContractTerms.model_validate(data)


def test_wbs_parent_must_exist() -> None:
    data = _terms_dict()
    data["project"]["wbs"][1]["parent_code"] = "9"
    with pytest.raises(ValidationError, match="unknown parent 9"):
        ContractTerms.model_validate(data)


def test_unknown_recognition_pattern_names_the_field() -> None:
    data = _terms_dict()
    data["obligations"][0]["recognition"] = {"kind": "vibes"}
    with pytest.raises(ValidationError) as error:
        ContractTerms.model_validate(data)
    assert error.value.errors()[0]["loc"][:3] == ("obligations", 0, "recognition")


def test_contract_versions_are_immutable() -> None:
    terms = examples.transformation_programme()
    with pytest.raises(ValidationError, match="frozen"):
        terms.title = "changed"  # type: ignore[misc]
