#!/bin/sh
# scistacks native engine: finish a conda environment inside the target image, as conda
# does after linking: compile .pyc files, then run the packages' post-link scripts.
#
# Runs in a container of the system image (the target platform, under emulation for other
# architectures), with the environment bind-mounted at $PREFIX and no network.
#   $1  a file listing "name version build_number" per package, in dependency order
#   $SYSTEM_PYTHON, $SYSTEM_SITE  (optional) the image's own Python and the folder of
#                   $PREFIX holding wheels installed for it (no conda python): compiled
#                   by that Python in the same way
# Output lines starting with @@ are read by the engine; everything else goes to the log.
set -u
list=$1
PATH="$PREFIX/bin:$PATH"
export PATH PREFIX
export CONDA_PREFIX="$PREFIX"

python="$PREFIX/bin/python"
if [ -x "$python" ]; then
    # checked-hash: the same sources give the same bytes (no mtimes inside), and Python
    # still notices a source file edited later. Failures (files written for other
    # Python versions, as in some test folders) are conda's behaviour too: not fatal.
    lib=$("$python" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))') || {
        echo "@@fail python - the environment's python does not start"
        exit 1
    }
    echo "@@step compile $lib"
    "$python" -m compileall -q -j 0 --invalidation-mode checked-hash "$lib" >/dev/null 2>&1
    echo "@@done compile"
fi
if [ -n "${SYSTEM_PYTHON:-}" ]; then
    echo "@@step compile $PREFIX/$SYSTEM_SITE with $SYSTEM_PYTHON"
    "$SYSTEM_PYTHON" -c pass || {
        echo "@@fail system-python - $SYSTEM_PYTHON does not start"
        exit 1
    }
    "$SYSTEM_PYTHON" -m compileall -q -j 0 --invalidation-mode checked-hash \
        "$PREFIX/$SYSTEM_SITE" >/dev/null 2>&1
    echo "@@done compile"
fi

while read -r name version buildnum; do
    script="$PREFIX/bin/.$name-post-link.sh"
    [ -f "$script" ] || continue
    echo "@@step post-link $name"
    # conda's variables for link scripts; .messages.txt is where they talk to the user
    if PKG_NAME=$name PKG_VERSION=$version PKG_BUILDNUM=$buildnum ROOT_PREFIX=$PREFIX \
        /bin/bash -x "$script" </dev/null; then
        echo "@@done post-link $name"
    else
        code=$?
        echo "@@fail $name $code"
        exit 1
    fi
    if [ -f "$PREFIX/.messages.txt" ]; then
        sed 's/^/  message: /' "$PREFIX/.messages.txt"
        rm -f "$PREFIX/.messages.txt"
    fi
done < "$list"
echo "@@end"
