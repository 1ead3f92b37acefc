"""The HTTP routes of a model's function: one list that the CDK API and the local gateway share.

Model routes carry the model's name as a literal path segment, so the API sends each model's
requests to that model's function; other `{param}` segments stay API Gateway path parameters.
The server-level routes of the Open Inference Protocol have no model in the path; they go to the
first model in the registry. The playground's routes (a model's page, its card and the files they
show; functions/playground/) are a list of their own: an API adds them only where a stage turns the
page on, and the function serves them only with MODELFN_PLAYGROUND set.
"""

from __future__ import annotations

from typing import NamedTuple


class Route(NamedTuple):
    method: str
    path: str  # "{name}" is the model's name; any other "{param}" matches one path segment

    def for_model(self, name: str) -> Route:
        return Route(self.method, self.path.replace("{name}", name))

    @property
    def key(self) -> str:
        """The API Gateway route key, e.g. 'POST /models/cifar10-cnn/predict'."""
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if `method path` matches this route (as API Gateway matches), else None."""
        if method != self.method:
            return None
        want, got = self.path.split("/"), path.split("/")
        if len(want) != len(got):
            return None
        params = {}
        for pattern, segment in zip(want, got, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                if not segment:
                    return None
                params[pattern[1:-1]] = segment
            elif pattern != segment:
                return None
        return params


MODEL_ROUTES: tuple[Route, ...] = (
    Route("POST", "/models/{name}/predict"),
    Route("POST", "/v2/models/{name}/infer"),
    Route("GET", "/v2/models/{name}"),
    Route("GET", "/v2/models/{name}/ready"),
    Route("POST", "/v2/models/{name}/versions/{version}/infer"),
    Route("GET", "/v2/models/{name}/versions/{version}"),
    Route("GET", "/v2/models/{name}/versions/{version}/ready"),
)

SERVER_ROUTES: tuple[Route, ...] = (
    Route("GET", "/v2"),
    Route("GET", "/v2/health/live"),
    Route("GET", "/v2/health/ready"),
)


# Read-only GETs: the page posts to the model's own predict route, as any client does. The page's
# URLs are relative to `/models/{name}/`, so they resolve under a stage's path prefix too.
PLAYGROUND_ROUTES: tuple[Route, ...] = (
    # The page (functions/playground/static/model.html). Not `/models/{name}/`: an API Gateway
    # route path cannot end in "/"; the local gateway redirects that URL here.
    Route("GET", "/models/{name}/page"),
    Route("GET", "/models/{name}/card.json"),  # the model card the page renders
    Route("GET", "/models/{name}/static/{asset}"),  # the page's CSS and JS
    Route("GET", "/models/{name}/files/{file}"),  # the version's report plots, sha256-checked
)


def route_table(model_names: list[str], *, playground: bool = False) -> list[tuple[Route, str]]:
    """Every concrete route the API exposes, with the model whose function answers it."""
    routes = MODEL_ROUTES + (PLAYGROUND_ROUTES if playground else ())
    table = [(route.for_model(name), name) for name in model_names for route in routes]
    if model_names:
        table += [(route, model_names[0]) for route in SERVER_ROUTES]
    return table


def find_route(
    table: list[tuple[Route, str]], method: str, path: str
) -> tuple[Route, str, dict[str, str]] | None:
    """The route, model and path parameters for a request; None where API Gateway would answer 404."""
    for route, model in table:
        params = route.match(method, path)
        if params is not None:
            return route, model, params
    return None
