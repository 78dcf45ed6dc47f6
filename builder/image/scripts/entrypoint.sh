#!/bin/sh
# scistacks entrypoint: like repo2docker's, run the image's `start` script first when it
# has one (it ends with `exec "$@"`), then the command.
if [ -x /srv/scistacks/start ]; then
    exec /srv/scistacks/start "$@"
fi
exec "$@"
