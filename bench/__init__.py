"""Benchmarks of the gateway against the reference design (``python -m bench``). Their stage is the
robustness suites' (``tests/support/stage.py``), served from a process of its own."""
