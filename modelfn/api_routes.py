"""The HTTP routes of a model's function: one list that the CDK API and the local gateway share.

Model routes carry the model's name as a literal path segment, so the API sends each model's
requests to that model's function. The server-level health routes of the Open Inference Protocol
have no model in the path; they go to the first model in the registry.
"""

from __future__ import annotations

from typing import NamedTuple


class Route(NamedTuple):
    method: str
    path: str  # with "{name}" where the model's name goes

    def for_model(self, name: str) -> Route:
        return Route(self.method, self.path.replace("{name}", name))

    @property
    def key(self) -> str:
        """The API Gateway route key, e.g. 'POST /models/cifar10-cnn/predict'."""
        return f"{self.method} {self.path}"


MODEL_ROUTES: tuple[Route, ...] = (
    Route("POST", "/models/{name}/predict"),
    Route("POST", "/v2/models/{name}/infer"),
    Route("GET", "/v2/models/{name}"),
    Route("GET", "/v2/models/{name}/ready"),
)

SERVER_ROUTES: tuple[Route, ...] = (
    Route("GET", "/v2"),
    Route("GET", "/v2/health/live"),
    Route("GET", "/v2/health/ready"),
)


def route_table(model_names: list[str]) -> dict[tuple[str, str], str]:
    """(method, concrete path) -> model name, for every route the API exposes."""
    table = {}
    for name in model_names:
        for route in MODEL_ROUTES:
            concrete = route.for_model(name)
            table[(concrete.method, concrete.path)] = name
    if model_names:
        for route in SERVER_ROUTES:
            table[(route.method, route.path)] = model_names[0]
    return table
