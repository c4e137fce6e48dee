"""Benchmarks of the gateway against the reference design (``python -m bench``), and the
harness they share with the robustness suites."""
