"""What the test suites share: AppSync Events invocations and Lambda contexts (``appsync``), and
the in-process stage the robustness suites and the benchmark's stage server run on (``stage``,
``aws_meter``, ``publish_sink``)."""
