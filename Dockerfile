# The image docker-compose.yml runs: hookbus, its examples, no dev tools.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bus ./bus
COPY engine ./engine
COPY sensors ./sensors
COPY notifiers ./notifiers
COPY examples ./examples
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["hookbus"]
