"""roomsight.plain_errors: pydantic's errors in a file's terms, one wording for plans and settings."""

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from roomsight.plain_errors import plain_words


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    port: int = 0


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    regions: tuple[str, ...] = ()
    section: _Section = _Section()
    tokens: dict[str, str] = {}
    name: str = ""

    @field_validator("name")
    @classmethod
    def _named(cls, v: str) -> str:
        if v == "bad":
            raise ValueError("a name is not 'bad'")
        return v


@pytest.mark.parametrize("raw, noun, options, said", [
    ({"regoins": ["eu-west"]}, "key", {}, "no such key"),
    ({"section": {"portt": 1}}, "setting", {}, "no such setting"),
    ({"regions": "eu-west"}, "key", {"list_example": "[a, b]"}, "should be a list, e.g. [a, b]"),
    ({"regions": "eu-west"}, "setting", {}, "should be a list"),
    ({"section": 3}, "setting", {"of_keys": True}, "should be a mapping of its keys"),
    ({"section": 3}, "key", {}, "should be a mapping"),
    ({"tokens": 3}, "setting", {"of_keys": True}, "should be a mapping"),  # a free mapping has no keys of its own
    ({"name": "bad"}, "key", {}, "a name is not 'bad'"),
    ({"section": {"port": "x"}}, "setting", {}, "Input should be a valid integer, unable to parse string as an integer"),
])
def test_plain_words(raw, noun, options, said):
    with pytest.raises(ValidationError) as info:
        _File.model_validate(raw)
    assert plain_words(info.value.errors()[0], noun, **options) == said
