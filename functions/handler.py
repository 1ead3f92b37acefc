"""The Lambda entry point. Importing this module is the init phase: it loads the model."""

from mangum import Mangum

from functions.app import create_app

app = create_app()
handler = Mangum(app, lifespan="off")
