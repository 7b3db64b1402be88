# pgmemo application image for the one-shot `migrate` and the `worker` services: pip-installs
# pgmemo from this checkout (the wheel ships sql/ and migrations/).
#   docker build -f docker/Dockerfile.app -t pgmemo-app .
FROM python:3.12-slim

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
WORKDIR /src
COPY pyproject.toml README.md install.sql ./
COPY python/pgmemo ./python/pgmemo
COPY sql ./sql
COPY migrations ./migrations
RUN pip install . && rm -rf /src

# No superuser powers needed at run time; the database connection says who we are.
RUN useradd --system --create-home pgmemo
USER pgmemo
WORKDIR /home/pgmemo
ENTRYPOINT ["pgmemo"]
CMD ["--help"]
