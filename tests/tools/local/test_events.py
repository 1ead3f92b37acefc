import base64
import json

from tools.local.events import http_api_event, response_parts


def test_json_request_is_plain_text() -> None:
    event = http_api_event(
        "post",
        "/models/m/predict",
        query="a=1&a=2&b=",
        headers={
            "Content-Type": "application/json",
            "Cookie": "c1=x; c2=y",
            "Host": "api.example.com",
        },
        body=b'{"inputs": []}',
        route_key="POST /models/m/predict",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /models/m/predict"
    assert event["rawPath"] == "/models/m/predict" and event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}  # API Gateway joins repeats
    assert event["headers"]["content-type"] == "application/json"  # header names arrive lower-case
    assert event["cookies"] == ["c1=x", "c2=y"] and "cookie" not in event["headers"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["domainName"] == "api.example.com"
    assert event["isBase64Encoded"] is False and json.loads(event["body"]) == {"inputs": []}


def test_binary_request_is_base64() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    event = http_api_event("POST", "/x", headers={"content-type": "image/png"}, body=png)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == png
    assert "queryStringParameters" not in event and "cookies" not in event


def test_response_parts_decodes_both_encodings() -> None:
    assert response_parts({"statusCode": 201, "headers": {"a": "b"}, "body": "hi"}) == (
        201,
        {"a": "b"},
        b"hi",
    )
    encoded = {
        "statusCode": 200,
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    assert response_parts(encoded)[2] == b"\x00\x01"


def test_json_that_is_not_utf8_travels_as_base64() -> None:
    body = b'{"inputs": ["\xff\xfe"]}'
    event = http_api_event("POST", "/x", headers={"content-type": "application/json"}, body=body)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == body


def test_path_parameters_are_passed_through() -> None:
    event = http_api_event(
        "GET",
        "/v2/models/m/versions/v1",
        route_key="GET /v2/models/m/versions/{version}",
        path_parameters={"version": "v1"},
    )
    assert event["pathParameters"] == {"version": "v1"}
    assert (
        event["routeKey"]
        == event["requestContext"]["routeKey"]
        == "GET /v2/models/m/versions/{version}"
    )
