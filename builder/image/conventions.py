"""The conventions every image follows, whichever engine built it (repo2docker's): where
the environment lives, who runs it, and where our entrypoint and start script sit."""

ENV_PREFIX = "/srv/conda/envs/notebook"
CONDA_DIR = "/srv/conda"
NB_USER = "jovyan"
NB_UID = 1000
HOME = f"/home/{NB_USER}"
START = "/srv/scistacks/start"
ENTRYPOINT = "/usr/local/bin/scistacks-entrypoint"
DEFAULT_CMD = "/usr/local/bin/scistacks-jupyter"
DEFAULT_BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Locked PyPI wheels go to the site-packages of the Python they were locked for, relative to
# ENV_PREFIX (conda's python reads it; a distribution on the system's Python puts it on
# PYTHONPATH in its start script).
SITE_PACKAGES = "lib/python{python}/site-packages"
SYSTEM_PYTHON = "/usr/bin/python{python}"  # the base image's Python, for pip_python locks
