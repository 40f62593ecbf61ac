"""What is measured of each answer, shared by the builtin model server and the response checker
beside other runtimes (ftrelease.sidecar), so one set of analysis templates serves both: output
checks (format, refusal, escalation), the Prometheus metrics with their labels, and review
samples. No torch."""
