"""The Lambda entry point. Importing this module is the init phase: it loads the model.

With SnapStart on, Lambda snapshots the sandbox after this import; `register_hooks` makes the
snapshot safe to share (functions/snapstart.py). The init runs with the cyclic garbage collector
paused (functions/__init__.py says why).
"""

from functions import gc_paused

with gc_paused():
    from mangum import Mangum

    from functions.app import create_app
    from functions.snapstart import register_hooks

    app = create_app()
    register_hooks(app.state.slot)
    handler = Mangum(app, lifespan="off")
