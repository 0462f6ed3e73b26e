#!/bin/sh
# A typical container entrypoint script: it prepares a few things, then runs
# the app *without exec*, so the shell stays as the parent (and, without an
# init, as PID 1). A shell waiting for a command does not pass SIGTERM on,
# and as PID 1 it does not even die of it: the platform's SIGKILL ends
# everything at the deadline, and the work in flight is lost.
#
#     gsup -- sh examples/shell-app/entrypoint.sh --port 8080
#
# Behind gsup it stops cleanly as it is: gsup sends the stop signal to the
# whole process group (the shell and the app), then waits for the app even
# after the shell is gone.
set -u

here="$(cd "$(dirname "$0")" && pwd)"
app_dir="${APP_DIR:-$here/..}"

echo "entrypoint: preparing (config templates, migrations...)"
: "${REDIS_ADDR:=127.0.0.1:6379}"
export REDIS_ADDR

# No exec here: the whole point of this example.
"${PYTHON:-python3}" "$app_dir/counter_app.py" "$@"
status=$?
echo "entrypoint: counter_app exited with status $status"
exit "$status"
