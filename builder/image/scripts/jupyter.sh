#!/bin/sh
# The image's default command: the first Jupyter server the image has.
# JupyterHub (KubeSpawner) replaces it with jupyterhub-singleuser.
for server in jupyter-lab jupyter-notebook jupyter-server; do
    if command -v "$server" >/dev/null 2>&1; then
        exec "$server" --ip=0.0.0.0 "$@"
    fi
done
echo "no Jupyter server in this image; give a command, e.g. docker run -it IMAGE bash" >&2
exit 1
