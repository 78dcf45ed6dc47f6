# What the image has: its uid, jupyter, nbconvert, python; one "@@probe KEY=VALUE" a line.
# Usage: sh -c "$(cat probe.sh)" (run through the image's entrypoint)
echo "@@probe uid=$(id -u)"
if j=$(command -v jupyter 2>/dev/null); then
    echo "@@probe jupyter=$j"
    if v=$(jupyter nbconvert --version 2>/dev/null); then echo "@@probe nbconvert=$v"; fi
fi
if p=$(command -v python 2>/dev/null || command -v python3 2>/dev/null); then
    echo "@@probe python=$p"
fi
echo "@@probe done=1"
