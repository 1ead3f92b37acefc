"""The playground: a model's page, its model card, and the files they show (issue 12).

Plain files, no build step: `static/model.html`, `static/playground.css` and
`static/playground.js`, served by the function itself (functions/routes/playground.py), so the
page that works under `modelfn serve` works deployed. The page renders `card.json` (`card.py`)
and posts to the model's own `POST /models/{name}/predict`, as any client does. The routes are
`modelfn.api_routes.PLAYGROUND_ROUTES`, served only with `MODELFN_PLAYGROUND` on.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
PAGE = "model.html"
# The files `static/{asset}` serves, by name: an allow-list, so no request names a path.
ASSETS: dict[str, str] = {
    "playground.css": "text/css; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
}


def static_file(name: str) -> bytes:
    """The bytes of one of the playground's own files (`PAGE` or an `ASSETS` name)."""
    if name != PAGE and name not in ASSETS:
        raise KeyError(name)
    return (STATIC_DIR / name).read_bytes()
