#!/bin/sh
# Entrypoint for the ollama service: start the server, pull the embedding model on first start
# (kept in the ollama volume afterwards), then stay in the foreground with the server.
set -eu
model="${OLLAMA_EMBEDDING_MODEL:-nomic-embed-text}"
ollama serve &
server=$!
tries=0
until ollama list >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 60 ]; then
        echo "ollama did not start within 60 s" >&2
        exit 1
    fi
    sleep 1
done
if ! ollama show "$model" >/dev/null 2>&1; then
    echo "pulling $model (first start only)"
    ollama pull "$model"
fi
wait "$server"
