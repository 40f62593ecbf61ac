# The operator (ghcr.io/finetune-release/operator), installed by `kubectl apply -k manifests/`.
#   docker build -f docker/operator.Dockerfile -t ghcr.io/finetune-release/operator:0.1.0 .
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install .
USER 65532:65532
ENTRYPOINT ["finetune-release-operator"]
