"""The job browser: HTML pages under /ui that call the JSON API from the browser.

The pages are jinja2 shells (``templates/``) holding no job data; plain scripts (``static/``) fetch
the data with the API key kept in the tab's sessionStorage, so the UI sees exactly what the key's
tenant sees through the API. ``routes.install_ui`` mounts both and sets a strict CSP on them.
"""

from services.gateway.ui.routes import install_ui

__all__ = ["install_ui"]
