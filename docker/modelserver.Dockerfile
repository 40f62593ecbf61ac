# The builtin model server (ghcr.io/finetune-release/modelserver). Build from the repo root:
#   docker build -f docker/modelserver.Dockerfile -t ghcr.io/finetune-release/modelserver:0.1.0 .
# The operator's `builtin` runtime runs `python -m ftrelease.modelserver` with the arguments in
# operator/ftrelease/serving/runtimes.py; models come in read-only under /models.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install ".[serve]"
USER 65532:65532
EXPOSE 8000
ENTRYPOINT ["python", "-m", "ftrelease.modelserver"]
CMD ["--help"]
