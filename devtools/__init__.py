"""Development tools of this repository, not part of the ``scistacks`` package (the wheel
ships ``builder/`` only): ``conda_channel`` builds the tiny conda packages of the demo channel
and of tests."""
