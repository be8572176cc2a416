"""The web dashboard and API: `castline.web.app.create_app(settings, engine, hub)`."""
