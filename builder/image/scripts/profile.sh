# scistacks: login shells (/etc/profile resets PATH) keep the environment first on PATH
case ":$PATH:" in
    *":${NB_PYTHON_PREFIX:-/srv/conda/envs/notebook}/bin:"*) ;;
    *) PATH="${NB_PYTHON_PREFIX:-/srv/conda/envs/notebook}/bin:$PATH"; export PATH ;;
esac
