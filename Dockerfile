# The ioc application image: one image, every process chosen by its `ioc` subcommand.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ioc ./ioc
COPY streams ./streams
COPY connectors ./connectors
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["ioc"]
CMD ["--help"]
