from modelfn.api_routes import (
    MODEL_ROUTES,
    SERVER_ROUTES,
    Route,
    find_route,
    route_table,
    skips_authorizer,
)


def test_model_routes_are_literal_per_model_and_server_routes_go_to_the_first() -> None:
    table = route_table(["b-model", "a-model"])
    assert find_route(table, "POST", "/models/a-model/predict")[1] == "a-model"  # type: ignore[index]
    assert find_route(table, "GET", "/v2/health/ready")[1] == "b-model"  # type: ignore[index]
    assert find_route(table, "GET", "/v2")[1] == "b-model"  # type: ignore[index]


def test_path_parameters_match_one_segment() -> None:
    table = route_table(["m"])
    route, model, params = find_route(
        table, "POST", "/v2/models/m/versions/20260101T000000Z-abcdef12/infer"
    )  # type: ignore[misc]
    assert route.key == "POST /v2/models/m/versions/{version}/infer"
    assert (model, params) == ("m", {"version": "20260101T000000Z-abcdef12"})
    assert find_route(table, "POST", "/v2/models/m/versions//infer") is None
    assert find_route(table, "POST", "/v2/models/m/versions/a/b/infer") is None


def test_what_api_gateway_would_not_route() -> None:
    table = route_table(["m"])
    assert find_route(table, "GET", "/models/m/predict") is None  # wrong method
    assert find_route(table, "POST", "/models/other/predict") is None  # other model
    assert find_route(table, "GET", "/v2/health/ready/") is None  # trailing slash is another path
    assert route_table([]) == []


def test_route_key() -> None:
    assert Route("GET", "/v2/models/{name}").for_model("m").key == "GET /v2/models/m"


def test_only_the_page_files_skip_the_authorizer_and_only_on_a_jwt_stage() -> None:
    table = route_table(["m"], playground=True)
    opened = {route.key for route, _ in table if skips_authorizer(route, "jwt")}
    # Not the card, the plots or predict: those carry model data or run the model.
    assert opened == {"GET /models/m/page", "GET /models/m/static/{asset}"}
    for auth in ("iam", "none"):  # iam: no page at all (settings refuse it); none: no authorizer
        assert not any(skips_authorizer(route, auth) for route, _ in table)
    assert not any(route.page_file for route in MODEL_ROUTES + SERVER_ROUTES)
