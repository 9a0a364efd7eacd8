"""``/docs``: Swagger UI for ``/openapi.json``, served from the swagger-ui-bundle package (no CDN).

The page asks for the bearer token once (kept in the tab's session storage) and sends it with
every request it makes, the document's own included.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, send_from_directory

bp = Blueprint("docs", __name__)

ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
    }
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>catalog read API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" href="/docs/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/swagger-ui-standalone-preset.js"></script>
<script>
let token = sessionStorage.getItem("catalog-api-token");
if (token === null) {
  token = window.prompt("Bearer token for this API (leave empty if it has none)") || "";
  sessionStorage.setItem("catalog-api-token", token);
}
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
  requestInterceptor: (req) => {
    if (token) { req.headers["Authorization"] = "Bearer " + token; }
    return req;
  },
});
</script>
</body>
</html>
"""


@bp.get("/docs")
def page() -> Response:
    return Response(PAGE, content_type="text/html; charset=utf-8")


@bp.get("/docs/static/<name>")
def asset(name: str) -> Response:
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    if name not in ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, name, max_age=86400)
