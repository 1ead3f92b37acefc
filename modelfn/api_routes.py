"""The HTTP routes of a model's function: one list that the CDK API and the local gateway share.

Model routes carry the model's name as a literal path segment, so the API sends each model's
requests to that model's function; other `{param}` segments stay API Gateway path parameters.
The server-level routes of the Open Inference Protocol have no model in the path; they go to the
first model in the registry. The playground's routes (a model's page, its card and the files they
show; functions/playground/) are a list of their own: an API adds them only where a stage turns the
page on, and the function serves them only with MODELFN_PLAYGROUND set.

Who may call a route is decided here too, for the CDK API and the local gateway alike: every route
needs the stage's authorization, except the page's own files (`Route.page_file`) on a JWT stage.
A browser cannot attach a token to a page load, so those files (the same HTML, CSS and JS for
every model, nothing from a model) open without one, and the page attaches the user's token to
every call it makes. Under IAM no page can work: a browser cannot SigV4-sign a request.
"""

from __future__ import annotations

from typing import NamedTuple


class Route(NamedTuple):
    method: str
    path: str  # "{name}" is the model's name; any other "{param}" matches one path segment
    # The playground page's own static files: the same bytes for every model and version, no model
    # data (the card and plots are not page files). Only these may skip a JWT authorizer.
    page_file: bool = False

    def for_model(self, name: str) -> Route:
        return Route(self.method, self.path.replace("{name}", name), self.page_file)

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
    # OpenAI's embeddings API under the model's base URL (`<api>/models/<name>/v1`). The list is
    # the same for every model, so every function gets it; one that is not a feature-extraction
    # model answers 404 naming its task (functions/routes/embeddings.py).
    Route("POST", "/models/{name}/v1/embeddings"),
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
    Route("GET", "/models/{name}/page", page_file=True),
    Route("GET", "/models/{name}/static/{asset}", page_file=True),  # the page's CSS and JS
    # What the page fetches with the user's token: the model's own data.
    Route("GET", "/models/{name}/card.json"),  # the model card the page renders
    Route("GET", "/models/{name}/files/{file}"),  # the version's report plots, sha256-checked
)

# The auth modes a browser page works under: it can send a bearer token it is given (jwt), or
# nothing (none); it cannot SigV4-sign a page load or its own calls (iam).
PAGE_AUTH_MODES: tuple[str, ...] = ("jwt", "none")
IAM_PAGE_PROBLEM = (
    "a browser cannot SigV4-sign a page load or the page's own calls, so API Gateway would answer "
    "403 before the function runs"
)

# CORS, where a stage lists origins (cdk.json `cors-origins`): the API answers preflights itself
# and adds the headers to its functions' answers. Browsers may call the routes' methods with JSON
# bodies, SigV4 (IAM) and bearer tokens (JWT); a preflight answer may be reused for an hour.
CORS_METHODS: tuple[str, ...] = ("GET", "POST")
CORS_HEADERS: tuple[str, ...] = (
    "content-type", "authorization", "x-amz-date", "x-amz-security-token",
    "x-amz-content-sha256",
)  # fmt: skip
CORS_MAX_AGE_S = 3600


def skips_authorizer(route: Route, auth: str) -> bool:
    """Whether `route` answers without the authorizer of a stage whose auth is `auth`.

    Only the page's own files on a JWT stage (with auth none nothing has an authorizer): a browser
    cannot put a token on a page load, and the page then sends the token on every call it makes.
    The predict, OIP, health, card and plot routes always keep the authorizer.
    """
    return route.page_file and auth == "jwt"


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
