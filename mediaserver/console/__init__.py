"""The web console: pages served at ``/console`` on the API's own listener.

The pages are static files (plain HTML, JavaScript modules and CSS, no build
step, nothing fetched from elsewhere) that hold no data: every figure they
show comes from the keyed API, so a browser without the key sees only the
login form (docs/console.md).
"""
