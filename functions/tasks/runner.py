"""The graph as a task adapter sees it, and the parameters every adapter validates the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, ValidationError

from functions.errors import BadInput, describe_validation_errors

# Input arrays by graph input name -> every output array by graph output name.
Runner = Callable[[dict[str, NDArray[Any]]], dict[str, NDArray[Any]]]


class NoParameters(BaseModel):
    """For a route or task that takes no parameters: any key is refused by name."""

    model_config = ConfigDict(extra="forbid")


def validate_parameters(schema: type[BaseModel], parameters: dict[str, Any]) -> Any:
    """`parameters` as `schema`, or BadInput naming each bad field as `parameters.<field>`."""
    try:
        return schema.model_validate(parameters)
    except ValidationError as exc:
        errors = [{**err, "loc": ("parameters", *err["loc"])} for err in exc.errors()]
        raise BadInput(describe_validation_errors(errors)) from None
