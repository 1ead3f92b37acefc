"""The local gateway's index of the playground: `GET /` lists each served model, linking its page.

Each model's page and card are its function's (functions/playground/, routed like any model
route: modelfn.api_routes.PLAYGROUND_ROUTES). The index is the gateway's own, like /docs: it asks
each function for its card.json with an event like any request, and lists task, version, alias
and the card's headline metric. Its stylesheet is the page's own, served at /playground.css.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from typing import Any

from functions.playground import ASSETS, static_file
from functions.routes.playground import SECURITY_HEADERS

INDEX_PATH = "/"
STYLE = "playground.css"

Reply = tuple[int, dict[str, str], bytes]
# A model's card as its function answered it, the reason there is none (e.g. not loaded), or None
# where the gateway has an authorizer: the card is model data, shown on the page to token holders.
Card = dict[str, Any] | str | None
BEHIND_AUTH = "its card is behind the API's authorization: open its page and give it a token"


def playground_url(gateway_url: str) -> str:
    return gateway_url.rstrip("/") + INDEX_PATH


def page_url(gateway_url: str, model: str) -> str:
    return f"{gateway_url.rstrip('/')}/models/{model}/page"


_MODEL_FOLDER = re.compile(r"/models/[a-z0-9][a-z0-9-]*/")


def answer(method: str, path: str, cards: Callable[[], Mapping[str, Card]]) -> Reply | None:
    """The reply to an index request, or None if it is not one."""
    if method != "GET":
        return None
    if path == INDEX_PATH:
        return (
            200,
            {"content-type": "text/html; charset=utf-8", **SECURITY_HEADERS},
            index_page(cards()),
        )
    if path == INDEX_PATH + STYLE:
        return 200, {"content-type": ASSETS[STYLE], **SECURITY_HEADERS}, static_file(STYLE)
    if _MODEL_FOLDER.fullmatch(path):
        # `/models/<name>/` is the URL people type; the page's route is `page` beside it, since an
        # API Gateway route cannot end in "/" (the page's relative links resolve the same).
        return 308, {"location": "page"}, b""
    return None


def headline(card: Mapping[str, Any]) -> str:
    figure = card.get("headline")
    if not figure:
        return "-"
    value = figure["value"]
    shown = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return f"{figure['name']} {shown}"


def index_page(cards: Mapping[str, Card]) -> bytes:
    rows = []
    for model, card in cards.items():
        name = html.escape(model)
        link = f'<a href="models/{name}/page">{name}</a>'
        if card is None or isinstance(card, str):
            note = BEHIND_AUTH if card is None else f"not available: {card}"
            rows.append(
                f'<tr><td class="name">{link}</td><td colspan="4" class="muted">'
                f"{html.escape(note)}</td></tr>"
            )
            continue
        cells = [card["task"], card["version"], card["alias"], headline(card)]
        rows.append(
            f'<tr><td class="name">{link}</td>'
            + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in cells)
            + "</tr>"
        )
    page = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>modelfn playground</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{STYLE}">
</head>
<body>
  <header class="top"><span class="brand">modelfn</span><span class="crumb">/</span><h1>playground</h1></header>
  <main class="index">
    <p>The models this gateway serves. Each page has a form for its task, real test examples,
    the raw request and response of each call, and its model card. API reference: <a href="docs">/docs</a>.</p>
    <table class="figures" id="models">
      <tr><th>model</th><th>task</th><th>version</th><th>alias</th><th>headline metric</th></tr>
      {"".join(rows)}
    </table>
  </main>
</body>
</html>
"""
    return page.encode()
