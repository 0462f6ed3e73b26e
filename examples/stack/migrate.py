"""A oneshot 'migration': prepares the state the web server needs, then exits 0."""

import os
import tempfile
import time

state = os.path.join(tempfile.gettempdir(), "gsup-stack-example.state")
print("migrate: applying migrations", flush=True)
time.sleep(0.3)
with open(state, "w") as f:
    f.write("schema v1\n")
print(f"migrate: done ({state})", flush=True)
