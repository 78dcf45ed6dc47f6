# The hub checks, as the image's default user through its entrypoint, as a hub's spawner
# runs it. Each check prints "@@check NAME STATUS TIME", its message lines, "@@end".
# Usage: sh hub.sh USER PORT TIMEOUT ENV_PREFIX NATIVE_START (hub_probe.py and
# hub_smoke.py beside it)
hub_user=$1 hub_port=$2 hub_timeout=$3 default_prefix=$4 native_start=$5
here=$(dirname "$0")
report() { printf '@@check %s %s %s\n%s\n@@end\n' "$1" "$2" "$(date +%s.%N)" "$3"; }
echo "@@t0 $(date +%s.%N)"
prefix="${NB_PYTHON_PREFIX:-${CONDA_DIR:+$CONDA_DIR/envs/notebook}}"
prefix="${prefix:-$default_prefix}"

start=
for candidate in "${R2D_ENTRYPOINT:-}" "$native_start"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then start=$candidate; break; fi
done
report start pass "the entrypoint ran and handed over the command${start:+ (start script: $start)}"

if v=$(jupyterhub-singleuser --version 2>&1); then
    report singleuser pass "jupyterhub-singleuser $(printf '%s\n' "$v" | tail -n 1)"
elif command -v jupyterhub-singleuser >/dev/null 2>&1; then
    report singleuser fail "jupyterhub-singleuser --version failed: $(printf '%s\n' "$v" | tail -n 20)"
else
    report singleuser fail "jupyterhub-singleuser not found on PATH ($PATH)"
fi

uid=$(id -u)
if [ "$uid" = 1000 ]; then
    report uid pass "uid 1000 ($(id -un 2>/dev/null))"
else
    report uid fail "the default user is uid $uid ($(id -un 2>/dev/null)), not 1000"
fi

if [ -z "${HOME:-}" ]; then
    report home fail "HOME is not set"
elif [ ! -d "$HOME" ]; then
    report home fail "HOME $HOME does not exist"
elif made=$(mktemp "$HOME/.scistacks-smoke.XXXXXX" 2>&1) && rm -f "$made"; then
    report home pass "HOME $HOME is writable"
else
    report home fail "HOME $HOME is not writable by uid $uid: $made"
fi

py=$(command -v python 2>/dev/null || command -v python3 2>/dev/null || true)
if [ -x "$prefix/bin/python" ]; then
    case "$py" in
        "$prefix/bin/"*) report python pass "python is $py" ;;
        *) report python fail "python on PATH is ${py:-missing}, not $prefix/bin/python (PATH=$PATH)" ;;
    esac
else
    report python skip "the environment $prefix has no python; python on PATH is ${py:-missing}"
fi

if command -v jupyterhub >/dev/null 2>&1 && command -v jupyterhub-singleuser >/dev/null 2>&1     && py=$(command -v python3 2>/dev/null || command -v python 2>/dev/null); then
    # the image's own hub spawns its own single-user server, as a hub on Kubernetes would
    if out=$("$py" "$here/hub_smoke.py" "$hub_user" "$hub_port" "$hub_timeout" 2>&1); then
        report server pass "${out#pass }"
    else
        report server fail "${out#fail }"
    fi
    exit 0
fi

log=$(mktemp /tmp/scistacks-server.XXXXXX)
base=/
if command -v jupyterhub-singleuser >/dev/null 2>&1; then
    how=jupyterhub-singleuser
    base=/user/$hub_user/
    # what a hub's spawner passes; no hub answers at the API URL, which the server
    # tolerates for a few retries, long enough to answer here
    JUPYTERHUB_API_TOKEN=scistacks-smoke \
    JUPYTERHUB_CLIENT_ID=jupyterhub-user-$hub_user \
    JUPYTERHUB_API_URL=http://127.0.0.1:8081/hub/api \
    JUPYTERHUB_BASE_URL=/ \
    JUPYTERHUB_SERVICE_PREFIX=$base \
    JUPYTERHUB_SERVICE_URL=http://127.0.0.1:$hub_port$base \
    JUPYTERHUB_USER=$hub_user \
    JUPYTERHUB_OAUTH_CALLBACK_URL=${base}oauth_callback \
        jupyterhub-singleuser --ip=127.0.0.1 --port="$hub_port" >"$log" 2>&1 &
elif jupyter server --version >/dev/null 2>&1; then
    how="jupyter server (no jupyterhub-singleuser)"
    jupyter server --ip=127.0.0.1 --port="$hub_port" --no-browser >"$log" 2>&1 &
elif jupyter notebook --version >/dev/null 2>&1; then
    how="jupyter notebook (no jupyterhub-singleuser)"
    jupyter notebook --ip=127.0.0.1 --port="$hub_port" --no-browser >"$log" 2>&1 &
else
    report server fail "no server to start: neither jupyterhub-singleuser nor jupyter server is installed"
    exit 0
fi
pid=$!
url="http://127.0.0.1:$hub_port${base}api"
if ! py=$(command -v python3 2>/dev/null || command -v python 2>/dev/null); then
    report server fail "$how started, but there is no python to probe $url"
    exit 0
fi
if answer=$("$py" "$here/hub_probe.py" "$url" "$pid" "$hub_timeout" 2>&1); then
    report server pass "$how answered $answer"
else
    report server fail "$how: $answer
$(tail -n 20 "$log")"
fi
kill "$pid" 2>/dev/null
exit 0
